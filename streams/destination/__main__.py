"""`python -m streams.destination ...` runs the destination CLI."""

from streams.destination.commands import destination

destination(prog_name="destination")
