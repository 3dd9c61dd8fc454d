"""`collectors kafka …`: run a real local Kafka broker for development and tests."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from .broker import DIST_ENV, HOME_ENV, LocalKafka
from .fetch import LocalKafkaError

F = TypeVar("F", bound=Callable[..., Any])


def _echo(message: str) -> None:
    click.echo(message, err=True)


def _broker_options(command: F) -> F:
    """``--port`` and ``--home``, shared by every subcommand."""
    command = click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"Broker home (config, data, log, pid). [default: ${HOME_ENV} or ~/.cache/collectors/kafka]; the jars "
        f"are cached once per user in ${DIST_ENV} or ~/.cache/collectors/kafka/dist",
    )(command)
    return click.option(
        "--port",
        type=click.IntRange(1, 65535),
        default=9092,
        show_default=True,
        envvar="COLLECTORS_KAFKA_PORT",
        help="Client port; the KRaft controller listens on port + 1.",
    )(command)


def _broker(port: int, home: Path | None) -> LocalKafka:
    if home is None:
        return LocalKafka(port=port, echo=_echo)
    return LocalKafka(port=port, home=home, echo=_echo)


def _fail(error: LocalKafkaError) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    raise SystemExit(1)


@click.group()
def kafka() -> None:
    """Run a real single-node Apache Kafka (KRaft) broker locally, without Docker."""


@kafka.command()
@_broker_options
@click.option("--reset", is_flag=True, help="Delete all topics and offsets before starting.")
@click.option("--wait", "wait_s", type=float, default=60, show_default=True, help="Seconds to wait for startup.")
def up(port: int, home: Path | None, reset: bool, wait_s: float) -> None:
    """Start the broker (fetching Kafka once) and wait until it serves requests."""
    broker = _broker(port, home)
    try:
        status = broker.up(wait_s, reset=reset)
    except LocalKafkaError as error:
        _fail(error)
    else:
        click.echo(f"bootstrap servers: {status.bootstrap_servers}  (Faust: kafka://{status.bootstrap_servers})")


@kafka.command()
@_broker_options
@click.option("--timeout", type=float, default=30, show_default=True, help="Seconds before SIGKILL.")
def down(port: int, home: Path | None, timeout: float) -> None:
    """Stop the broker started by `up` (data is kept; `up --reset` discards it)."""
    try:
        _broker(port, home).down(timeout)
    except LocalKafkaError as error:
        _fail(error)


@kafka.command()
@_broker_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(port: int, home: Path | None, as_json: bool) -> None:
    """Show whether the broker runs; exit code 0 if running, 1 if stopped."""
    current = _broker(port, home).status()
    if as_json:
        click.echo(json.dumps(current.as_dict()))
    elif current.running:
        answering = "answering" if current.answering else "not answering yet"
        click.echo(f"running  pid {current.pid}  {current.bootstrap_servers}  ({answering})")
        click.echo(f"log: {current.log_file}")
    else:
        click.echo(f"stopped  {current.bootstrap_servers}  (start it with `{_up_command(port, home)}`)")
    if not current.running:
        raise SystemExit(1)


def _up_command(port: int, home: Path | None) -> str:
    """The `kafka up` command line that starts this very broker."""
    return f"collectors kafka up --port {port}" + (f" --home {shlex.quote(str(home))}" if home is not None else "")


@kafka.command()
@_broker_options
def fetch(port: int, home: Path | None) -> None:
    """Download the Kafka jars from Maven Central into the cache (done by `up` if needed)."""
    try:
        click.echo(_broker(port, home).fetch())
    except LocalKafkaError as error:
        _fail(error)
