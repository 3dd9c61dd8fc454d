"""Publish prediction events to Kafka with aiokafka, keyed by event id so partitions spread the load."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError


def bootstrap_address(broker: str) -> str:
    """``kafka://host:port`` (Faust's form) or ``host:port`` → ``host:port``."""
    return broker.removeprefix("kafka://")


def event_key(line: bytes) -> bytes | None:
    """The event's id as the record key, or None for a line that is not an event (it is sent anyway)."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(document, dict) and isinstance(document.get("id"), str):
        return str(document["id"]).encode()
    return None


async def ensure_topic(bootstrap: str, topic: str, partitions: int, configs: dict[str, str] | None = None) -> None:
    """Create the topic with ``partitions`` partitions (and topic ``configs``) unless it exists."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_address(bootstrap))
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        await admin.close()
        raise ConnectionError(f"cannot reach Kafka at {bootstrap_address(bootstrap)} ({exc})") from None
    try:
        if topic not in await admin.list_topics():
            new = NewTopic(topic, num_partitions=partitions, replication_factor=1, topic_configs=configs or {})
            await admin.create_topics([new])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()


async def publish_lines(
    lines: Sequence[bytes],
    *,
    bootstrap: str,
    topic: str,
    partitions: int = 4,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send each line as one record, unchanged; return how many the broker acknowledged. ``progress`` is
    called with the number of records acknowledged as they are."""
    await ensure_topic(bootstrap, topic, partitions)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_address(bootstrap), acks="all", linger_ms=5, max_batch_size=1_048_576
    )
    try:
        await producer.start()
    except KafkaConnectionError as exc:
        await producer.stop()
        raise ConnectionError(f"cannot reach Kafka at {bootstrap_address(bootstrap)} ({exc})") from None
    try:
        futures = [await producer.send(topic, line, key=event_key(line)) for line in lines]
        for future in futures:
            await future
            if progress is not None:
                progress(1)
    finally:
        await producer.stop()
    return len(futures)
