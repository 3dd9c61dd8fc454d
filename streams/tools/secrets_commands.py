"""`collectors secrets`: make a secret, and re-seal every stored key with the newest one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import click
from aiokafka.errors import KafkaError

from schemas.management import CONTROL_TOPIC
from streams.core.secrets import (
    SecretBox,
    SecretError,
    Undecryptable,
    generate_secret,
    install_redaction,
    load_box,
    resealed,
)
from streams.kafka.control_topic import ControlReader, ControlWriter
from streams.tools.exits import EXIT_UNREACHABLE, EXIT_USAGE

READ_TIMEOUT_S = 30.0


@click.group()
def secrets() -> None:
    """The secret that seals destination keys in the control topic (docs/SECURITY.md)."""


@secrets.command()
def generate() -> None:
    """Print a new random secret, for COLLECTORS_SECRET_KEY or a COLLECTORS_SECRET_KEY_FILE."""
    click.echo(generate_secret())


@dataclass
class Rotation:
    """What a rotation did with the control topic's collectors."""

    resealed: list[str] = field(default_factory=list)
    current: int = 0
    undecryptable: list[str] = field(default_factory=list)


async def rotate_topic(broker: str, topic: str, box: SecretBox) -> Rotation:
    """Re-seal with the newest secret every stored key that is in clear or sealed with an older one.

    Idempotent: a key already sealed with the newest secret is not written again. Workers keep running: each
    record is replaced whole, and workers open it with any configured secret.
    """
    reader = ControlReader(broker, topic)
    writer = ControlWriter(broker, topic)
    rotation = Rotation()
    try:
        await reader.start()
        await asyncio.wait_for(reader.ready.wait(), READ_TIMEOUT_S)
        await writer.start()
        for key, document in sorted(reader.state.items()):
            try:
                updated = resealed(document, box)
            except Undecryptable:
                rotation.undecryptable.append(key)
                continue
            if updated is None:
                rotation.current += document.get("kind", "collector") == "collector"
            elif reader.state.get(key) is document:  # not changed meanwhile
                await writer.put(key, updated)
                rotation.resealed.append(key)
    finally:
        await writer.stop()
        await reader.stop()
    return rotation


@secrets.command()
@click.option(
    "--broker",
    default="kafka://127.0.0.1:9092",
    show_default=True,
    envvar="COLLECTORS_BROKER",
    help="Kafka bootstrap, kafka://host:port [env COLLECTORS_BROKER].",
)
@click.option(
    "--control-topic",
    default=CONTROL_TOPIC,
    show_default=True,
    envvar="COLLECTORS_CONTROL_TOPIC",
    help="Compacted topic of managed collectors [env COLLECTORS_CONTROL_TOPIC].",
)
def rotate(broker: str, control_topic: str) -> None:
    """Re-seal every stored key with the newest secret (the first of COLLECTORS_SECRET_KEY), idempotently.

    Give the new secret first and the old ones after it, here and to every worker and management API; run
    this; once it reports every key current, the old secrets can be retired.
    """
    install_redaction()
    try:
        box = load_box()
    except SecretError as exc:
        raise _failure(str(exc), EXIT_USAGE) from None
    try:
        rotation = asyncio.run(rotate_topic(broker, control_topic, box))
    except (ConnectionError, KafkaError, TimeoutError) as exc:
        raise _failure(
            f"cannot read {control_topic} on {broker} ({type(exc).__name__}); start Kafka or pass --broker",
            EXIT_UNREACHABLE,
        ) from None
    click.echo(f"{len(rotation.resealed)} key(s) re-sealed with the newest secret, {rotation.current} already current")
    if rotation.undecryptable:
        raise _failure(
            f"{len(rotation.undecryptable)} stored key(s) open with none of the {box.count} secret(s) given: "
            f"{', '.join(rotation.undecryptable)}; add the secret they were sealed with (after the newest) and run "
            "this again, or give those collectors new keys",
            EXIT_USAGE,
        )


def _failure(message: str, exit_code: int) -> click.ClickException:
    failure = click.ClickException(message)
    failure.exit_code = exit_code
    return failure
