"""Errors of the operations commands, each with its exit code (click prints the message and exits)."""

from __future__ import annotations

import click

EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNREACHABLE = 4


class UsageProblem(click.ClickException):
    """Something to fix in the command line or a file it names (e.g. an unknown collector)."""

    exit_code = EXIT_USAGE


class Refused(click.ClickException):
    """The operation would not be safe or was refused (e.g. the destination refused the key)."""

    exit_code = EXIT_REFUSED


class Unreachable(click.ClickException):
    """Kafka, a worker or a destination did not answer."""

    exit_code = EXIT_UNREACHABLE
