"""``python -m streams`` is the ``collectors`` command."""

from streams.cli import main

main()
