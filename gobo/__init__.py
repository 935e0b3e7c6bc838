"""The ``gobo`` command: one entry point for quantization, whole-model accuracy, RTL simulation,
Verilog emission and synthesis. It sits above ``golden``, ``hw``, ``sim`` and ``synth`` and
imports them; none of them imports it."""

from importlib import metadata

try:
    __version__ = metadata.version("gobo-accel")
except metadata.PackageNotFoundError:   # run from a source tree that was never installed
    __version__ = "unknown"
