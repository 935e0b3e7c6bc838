"""What every ``gobo`` subcommand shares: the user-error exception, the --help example, the outlier
fit options and the warning lines."""

import sys

from golden.quant.outliers import OUTLIER_FITS, OUTLIER_SCOPES

__all__ = ["CliError", "EXIT_USAGE", "example", "add_outlier_options", "print_warnings"]

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
