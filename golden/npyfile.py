"""Reading untrusted .npy arrays and .npz / zip archives: every size and count is checked against
the file, and capped, before anything is allocated (``np.load`` trusts a header's shape: a
128-byte .npy can ask for 7 TiB). Problems raise :class:`NpyError`, one line naming the file;
each loader (weights, layer image) re-raises it as its own error.
"""

import ast
import math
import re
import struct
import zipfile
import zlib

import numpy as np

__all__ = ["NpyError", "read_npy", "read_npz", "npy_array", "open_zip", "zip_members",
           "check_shape", "numel", "is_int", "Counted", "ZIP_ERRORS", "MAX_NDIM",
           "MAX_NPY_HEADER", "MAX_INFLATION", "MAX_ARCHIVE_BYTES"]

#: Caps checked before anything is allocated: a tensor has at most 16 dimensions; a .npy header
#: at most 10000 bytes (NumPy's own limit); an archive member may decompress to at most 100
#: times its compressed size plus 16 MiB (real weights compress less than 2x, a zip bomb
#: 1000x), and a whole archive to at most 16 GiB.
MAX_NDIM = 16
MAX_DIM = 2 ** 48
MAX_NPY_HEADER = 10000
MAX_INFLATION = 100
MAX_ARCHIVE_BYTES = 16 * 2 ** 30
#: The highest zip "version needed to extract" that zipfile reads.
_MAX_ZIP_VERSION = 63

#: NumPy dtype kinds a .npy array may hold (plain numbers, either byte order; no objects, no
#: records, no strings).
_NPY_KINDS = "fiub"


_SIMPLE_DTYPE = re.compile(r"[<>|=]?(?P<kind>f[248]|i[1248]|u[1248]|b1|U[1-9][0-9]{0,5})")


class NpyError(ValueError):
    """An array file or archive is malformed or asks for too much."""


def _fail(path, message):
    raise NpyError(f"{path}: {message}")


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_shape(path, what, shape):
    """A shape as a tuple of non-negative ints, or an NpyError naming ``what``."""
    if not isinstance(shape, (list, tuple)) or not all(is_int(n) for n in shape):
        _fail(path, f"{what} has shape {shape!r}, not a list of integers")
    if len(shape) > MAX_NDIM:
        _fail(path, f"{what} has {len(shape)} dimensions (at most {MAX_NDIM})")
    if any(n < 0 for n in shape):
        _fail(path, f"{what} has a negative dimension in its shape {list(shape)}")
    if any(n > MAX_DIM for n in shape):
        _fail(path, f"{what} has a dimension over 2**48 in its shape {list(shape)}")
    return tuple(shape)


def numel(shape):
    return math.prod(shape)   # Python ints: no overflow, however large the dimensions


_NPY_MAGIC = b"\x93NUMPY"


def _npy_header(path, f, what, kinds):
    """``(dtype, shape, fortran_order)`` from the header of a .npy stream ``f``."""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != _NPY_MAGIC:
        _fail(path, f"{what} is not a .npy array (no \\x93NUMPY magic)")
    major = magic[6]
    if major not in (1, 2, 3):
        _fail(path, f"{what} has .npy format version {major}.{magic[7]} (this reader knows 1-3)")
    width = 2 if major == 1 else 4
    length_bytes = f.read(width)
    if len(length_bytes) < width:
        _fail(path, f"{what} is truncated in its .npy header")
    length = int.from_bytes(length_bytes, "little")
    if length > MAX_NPY_HEADER:
        _fail(path, f"{what} has a {length}-byte .npy header (at most {MAX_NPY_HEADER})")
    text = f.read(length)
    if len(text) < length:
        _fail(path, f"{what} is truncated in its .npy header")
    try:
        header = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin1"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError,
            TypeError):
        _fail(path, f"{what} has a .npy header that is not a Python literal")
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        _fail(path, f"{what} has a .npy header without exactly descr, fortran_order and shape")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str) or not isinstance(fortran, bool):
        _fail(path, f"{what} has a malformed .npy header ({descr!r}, {fortran!r})")
    # Matched before NumPy sees it: np.dtype() parses comma strings and repeat counts itself
    # (with literal_eval), and would accept records, objects and strings.
    match = _SIMPLE_DTYPE.fullmatch(descr)
    if match is None or match["kind"][0] not in kinds:
        _fail(path, f"{what} holds dtype {descr[:40]!r}; only numbers (float, int, bool) are "
                    f"read (never pickled objects)")
    dtype = np.dtype(descr)
    if not isinstance(shape, tuple):
        _fail(path, f"{what} has shape {shape!r}, not a tuple")
    return dtype, check_shape(path, what, shape), fortran


def npy_array(path, f, available, what, kinds=_NPY_KINDS):
    """The array of a .npy stream ``f`` holding ``available`` bytes in all; sizes are checked
    against ``available`` before anything is allocated."""
    dtype, shape, fortran = _npy_header(path, f, what, kinds)
    nbytes = numel(shape) * dtype.itemsize
    left = available - f.tell()
    if nbytes != left:
        _fail(path, f"{what} has shape {shape} of {dtype} ({nbytes} bytes) but holds {left} "
                    f"bytes of data")
    data = f.read(nbytes)
    if len(data) != nbytes:
        _fail(path, f"{what} is truncated ({len(data)} of {nbytes} bytes)")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return array


def zip_members(path, archive, suffix_ok, what):
    """The archive's members, their declared sizes and methods checked before any is read."""
    infos = archive.infolist()
    total = 0
    seen = set()
    for info in infos:
        name = info.filename
        if name in seen:
            _fail(path, f"the archive holds {name!r} twice")
        seen.add(name)
        if name.endswith("/"):
            continue
        if not suffix_ok(name):
            _fail(path, f"member {name!r} is not a {what}")
        if info.flag_bits & 0x61:   # encrypted (bits 0, 6) or patch data (bit 5)
            _fail(path, f"member {name!r} is encrypted or patch data (flags "
                        f"{info.flag_bits:#06x})")
        if info.extract_version > _MAX_ZIP_VERSION:
            _fail(path, f"member {name!r} needs zip version {info.extract_version / 10}")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            _fail(path, f"member {name!r} uses compression method {info.compress_type} (only "
                        f"stored and deflate are read)")
        if info.file_size > MAX_INFLATION * info.compress_size + 16 * 2 ** 20:
            _fail(path, f"member {name!r} claims to decompress from {info.compress_size} to "
                        f"{info.file_size} bytes (more than {MAX_INFLATION}x: a zip bomb?)")
        total += info.file_size
    if total > MAX_ARCHIVE_BYTES:
        _fail(path, f"the archive decompresses to {total} bytes (at most {MAX_ARCHIVE_BYTES})")
    return [info for info in infos if not info.filename.endswith("/")]


#: What a damaged zip raises while being read, beyond the checks above.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, struct.error)


def open_zip(path):
    try:
        return zipfile.ZipFile(path)
    # NotImplementedError: a central directory entry needing a zip version above 6.3.
    except (*ZIP_ERRORS, ValueError, NotImplementedError) as e:
        _fail(path, f"not a readable zip archive ({e})")


class Counted:
    """A read-only stream that knows its position (zip members' ``tell`` is not reliable)."""

    def __init__(self, stream):
        self._stream, self._at = stream, 0

    def read(self, n):
        data = self._stream.read(n)
        self._at += len(data)
        return data

    def tell(self):
        return self._at




def read_npy(path):
    """The array of a .npy file."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(0)
        return npy_array(path, f, size, "the file")


def read_npz(path, kinds=_NPY_KINDS):
    """``{name: array}`` of an .npz archive (member ``name.npy``); a member that is not a .npy
    array, or holds a dtype kind outside ``kinds``, is refused."""
    with open_zip(path) as archive:
        arrays = {}
        for info in zip_members(path, archive, lambda n: n.endswith(".npy"), ".npy array"):
            try:
                with archive.open(info) as member:
                    arrays[info.filename[:-len(".npy")]] = npy_array(
                        path, Counted(member), info.file_size, f"member {info.filename!r}",
                        kinds)
            except ZIP_ERRORS as e:
                _fail(path, f"member {info.filename!r} is damaged ({e})")
        return arrays
