"""What every ``gobo`` subcommand shares: the user-error exception and the --help example."""

__all__ = ["CliError", "EXIT_USAGE", "example"]

#: Exit status for user errors (as argparse uses for usage errors).
EXIT_USAGE = 2


class CliError(Exception):
    """A user mistake, reported as one line ``gobo: error: ...`` without a traceback."""


def example(*lines):
    """An argparse epilog of pasteable command ``lines`` (give the parser
    ``formatter_class=argparse.RawDescriptionHelpFormatter`` so they stay verbatim)."""
    return "example:\n" + "\n".join(f"  {line}" for line in lines)
