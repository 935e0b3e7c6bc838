"""What every ``gobo`` subcommand shares: the user-error exception, the --help example, the outlier
fit options and the warning lines."""

import difflib
import json
import math
import os
import pathlib
import sys

__all__ = ["CliError", "EXIT_USAGE", "example", "add_outlier_options", "print_warnings",
           "print_json", "json_safe", "no_such_tensor", "note", "writable_folder",
           "writable_file"]

#: Exit status for user errors (as argparse uses for usage errors).
EXIT_USAGE = 2


class CliError(Exception):
    """A user mistake, reported as one line ``gobo: error: ...`` without a traceback."""


def example(*lines):
    """An argparse epilog of pasteable command ``lines`` (give the parser
    ``formatter_class=argparse.RawDescriptionHelpFormatter`` so they stay verbatim)."""
    return "example:\n" + "\n".join(f"  {line}" for line in lines)


def add_outlier_options(p, *, scope=True):
    """``--outlier-fit`` and (with ``scope``) ``--outlier-scope``, default None so that a handler
    can tell what the user set (None means ``gaussian`` and ``matrix``, GOBO's rule)."""
    # Imported here, not at the top: `gobo.cli` imports this module before its Ctrl-C handler
    # is in place, and NumPy takes a noticeable moment to import.
    from golden.quant.outliers import OUTLIER_FITS, OUTLIER_SCOPES

    p.add_argument("--outlier-fit", choices=OUTLIER_FITS, default=None,
                   help="the Gaussian of the outlier rule: gaussian (mean and std, as in the "
                        "paper; default) or robust (median and 1.4826 x MAD, which a few extreme "
                        "weights cannot inflate); docs/quantizer.md")
    if scope:
        p.add_argument("--outlier-scope", choices=OUTLIER_SCOPES, default=None,
                       help="one outlier fit per matrix (default) or per encoder layer, pooled "
                            "over the layer's FC matrices (names encoder.layer.{i}.*) and applied "
                            "to each; the centroids stay per matrix")


def print_warnings(records, file=None):
    """One line ``gobo: warning: NAME: MESSAGE`` on stderr per warning of each record (a dict with
    ``name`` and, optionally, ``warnings``)."""
    for record in records:
        for message in record.get("warnings", ()):
            print(f"gobo: warning: {record['name']}: {message}", file=file or sys.stderr,
                  flush=True)


def json_safe(value):
    """``value`` with every NaN or infinite float replaced by None: JSON has no NaN, and a bare
    ``NaN`` breaks every strict reader."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):   # a NumPy scalar
        return json_safe(value.item())
    return value


def print_json(value, file=None):
    """One line of strict JSON (non-finite numbers as null) on stdout."""
    print(json.dumps(json_safe(value), allow_nan=False), file=file or sys.stdout)


def no_such_tensor(path, name, names):
    """The :class:`CliError` for a tensor ``name`` not among ``names``, with a "did you mean"."""
    names = list(names)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        hint = f"; did you mean {close[0]!r}?"
    elif len(names) <= 3:    # a .npy file's one tensor is named after the file's stem
        hint = f" (the file has {', '.join(map(repr, names)) or 'none'})"
    else:
        hint = f" (the file has {len(names)} tensors)"
    return CliError(f"{path}: no tensor {name!r}{hint}")


def note(message, file=None):
    """One line ``gobo: note: ...`` on stderr."""
    print(f"gobo: note: {message}", file=file or sys.stderr, flush=True)


def writable_folder(path):
    """Make the output folder ``path`` (parents too) before any long work, so that a bad
    ``--out`` fails at once, not after minutes. Returns it as a :class:`pathlib.Path`.

    Raises
    ------
    CliError
        If it cannot be made or written.
    """
    folder = pathlib.Path(path).expanduser()
    if folder.exists() and not folder.is_dir():   # mkdir would say only "File exists"
        raise CliError(f"{path}: is a file, not a folder; give a folder for the reports")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"{path}: cannot make the output folder ({e.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise CliError(f"{path}: the output folder is not writable")
    return folder


def writable_file(path):
    """Check, before any long work, that the output file ``path`` can be written: its folder
    exists and is writable, and ``path`` is not a folder.

    Raises
    ------
    CliError
        Naming what is wrong.
    """
    file = pathlib.Path(path).expanduser()
    folder = file.parent
    if file.is_dir():
        raise CliError(f"{path}: is a folder; give a file name")
    if not folder.is_dir():
        raise CliError(f"{path}: cannot write it (no folder {folder})")
    if not os.access(folder, os.W_OK):
        raise CliError(f"{path}: cannot write it (folder {folder} is not writable)")
    return file
