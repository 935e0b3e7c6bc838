"""One module per ``gobo`` subcommand, each with ``add(subparsers)`` that registers its parser
and sets ``handler``; :data:`gobo.cli.COMMANDS` lists them in help order."""
