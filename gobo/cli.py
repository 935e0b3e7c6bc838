"""The ``gobo`` command line: ``quantize``, ``model``, ``run``, ``simulate``, ``board``,
``verilog``, ``synth``, ``latency``.

Each subcommand is a module of :mod:`gobo.commands` with an ``add(subparsers)`` function; a new
one is one more module listed in :data:`COMMANDS`. User mistakes raise :class:`CliError` (or a
``ValueError`` of the library, which every loader's error is) and become a one-line
``gobo: error: ...`` on stderr with exit status 2, never a traceback.
"""

import argparse
import importlib
import os
import sys

from gobo import __version__
from gobo.common import EXIT_USAGE, CliError

__all__ = ["main", "build_parser", "COMMANDS", "CliError"]

#: The subcommand modules, in help order (imported when the parser is built).
COMMANDS = ("quantize", "model", "run", "simulate", "board", "verilog", "synth", "latency")


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus an error and exits; we want one line and a return code."""

    def error(self, message):
        raise CliError(message)


def build_parser():
    """The ``gobo`` parser with every subcommand of :data:`COMMANDS`."""
    parser = _Parser(prog="gobo", description="GOBO accelerator generator: quantize BERT weights "
                     "to dictionary indexes plus exact outliers, model, simulate, emit and "
                     "synthesize the accelerator.",
                     epilog="Run `gobo COMMAND --help` for a command's options and an example.")
    parser.add_argument("--version", action="version", version=f"gobo {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND",
                                       parser_class=_Parser)
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(f"gobo.commands.{name}").add(subparsers)
    return parser


def main(argv=None):
    """Run ``gobo`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except SystemExit as e:  # --help and --version exit through argparse; report, don't exit
        return e.code if isinstance(e.code, int) else 0
    # Every loader's error (WeightsError, ImageError, ModelFormatError, BertError) is a
    # ValueError; nothing from golden is imported before this handler is in place, so that a
    # Ctrl-C while NumPy loads ends in one line too.
    except (CliError, ValueError) as e:
        print(f"gobo: error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; silence the flush at interpreter exit.
        sys.stdout = open(os.devnull, "w")
        return 1
    except KeyboardInterrupt:
        print("gobo: interrupted", file=sys.stderr)
        return 130
    except OSError as e:   # after BrokenPipeError: a file that cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        print(f"gobo: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
