"""``python -m streams`` is the ``collectors`` command."""

from streams.tools.cli import main

main()
