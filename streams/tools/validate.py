"""``collectors validate -f FILE``: every problem of a collectors file, offline."""

from __future__ import annotations

from pathlib import Path

import click

from streams.core.validation import problems
from streams.tools.exits import EXIT_USAGE


@click.command("validate")
@click.option(
    "-f",
    "--file",
    "paths",
    required=True,
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A collectors document (YAML or JSON); repeat for several.",
)
def validate(paths: tuple[Path, ...]) -> None:
    """Check collectors files as workers and `apply` would, listing every error at once.

    Offline: no API, no broker, no destination (keys are not checked; an unset key_env is a warning).
    Exit code 0 when every file is valid, 2 otherwise.
    """
    failed = False
    for path in paths:
        errors, warnings = problems(path)
        for warning in warnings:
            click.echo(f"warning: {path}: {warning}", err=True)
        for error in errors:
            click.secho(f"error: {error}", fg="red", err=True)
        if errors:
            failed = True
        else:
            click.echo(f"{path}: valid")
    if failed:
        raise SystemExit(EXIT_USAGE)
