"""`python -m streams.services.destination ...` runs the destination CLI."""

from streams.services.destination.commands import destination

destination(prog_name="destination")
