"""Read topics straight from Kafka: no consumer group, nothing committed, from given offsets to given ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from streams.kafka.producing import bootstrap_address

Offsets = Mapping[TopicPartition, int]


class KafkaUnreachable(ConnectionError):
    """The broker did not answer."""


def unreachable_kafka(broker: str, exc: Exception) -> KafkaUnreachable:
    """The error for a broker that does not answer, saying what to check."""
    return KafkaUnreachable(
        f"cannot reach Kafka at {bootstrap_address(broker)} ({exc}); check --broker (or COLLECTORS_BROKER) "
        "and that Kafka runs (`collectors kafka status`)"
    )


@asynccontextmanager
async def consumer(broker: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer outside any group (offsets are never committed)."""
    client = AIOKafkaConsumer(bootstrap_servers=bootstrap_address(broker), group_id=None, enable_auto_commit=False)
    try:
        await client.start()
    except KafkaConnectionError as exc:
        await client.stop()
        raise unreachable_kafka(broker, exc) from None
    try:
        yield client
    finally:
        await client.stop()


async def partitions(broker: str, topic: str) -> list[TopicPartition]:
    """The topic's partitions; none when the topic does not exist (it is not created)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_address(broker))
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        await admin.close()
        raise unreachable_kafka(broker, exc) from None
    try:
        if topic not in await admin.list_topics():
            return []
        (description,) = await admin.describe_topics([topic])
        return sorted(TopicPartition(topic, p["partition"]) for p in description["partitions"])
    finally:
        await admin.close()


async def read_range(client: AIOKafkaConsumer, start: Offsets, end: Offsets) -> AsyncIterator[Any]:
    """Every record from ``start`` (included) to ``end`` (excluded) of each partition, in partition order."""
    wanted = [tp for tp in start if start[tp] < end[tp]]
    if not wanted:
        return
    client.assign(wanted)
    for tp in wanted:
        client.seek(tp, start[tp])
    while wanted:
        batches = await client.getmany(*wanted, timeout_ms=500)
        for tp, records in batches.items():
            for record in records:
                if record.offset < end[tp]:
                    yield record
        wanted = [tp for tp in wanted if await client.position(tp) < end[tp]]


async def read_from_start(client: AIOKafkaConsumer, tps: list[TopicPartition]) -> AsyncIterator[Any]:
    """Every record of these partitions, from their start to their end when the call began."""
    start = await client.beginning_offsets(tps)
    end = await client.end_offsets(tps)
    async for record in read_range(client, start, end):
        yield record
