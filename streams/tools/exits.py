"""Exit codes of the ``collectors`` command, the same for every subcommand."""

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNREACHABLE = 4
