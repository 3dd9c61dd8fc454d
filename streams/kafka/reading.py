"""Read topics straight from Kafka: no consumer group, nothing committed, from given offsets to given ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
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
    return (await partitions_of(broker, [topic])).get(topic, [])


async def partitions_of(broker: str, topics: Sequence[str]) -> dict[str, list[TopicPartition]]:
    """Each existing topic's partitions (a topic that does not exist is left out), with one admin request."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_address(broker))
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        await admin.close()
        raise unreachable_kafka(broker, exc) from None
    try:
        existing = [topic for topic in topics if topic in await admin.list_topics()]
        described = await admin.describe_topics(existing) if existing else []
        return {
            d["topic"]: sorted(TopicPartition(d["topic"], p["partition"]) for p in d["partitions"]) for d in described
        }
    finally:
        await admin.close()


@dataclass
class Latest:
    """The last record of each partition under its key (a partition without one is left out), and how many
    records were read to find them."""

    records: dict[TopicPartition, Any] = field(default_factory=dict)
    read: int = 0


async def read_latest(client: AIOKafkaConsumer, keys: Mapping[TopicPartition, Collection[bytes]]) -> Latest:
    """The last record of each partition whose key is one of its ``keys``, read from the end backwards.

    A partition whose last record has such a key costs one record, whatever the partition's length; otherwise
    the window read before the end grows eightfold until the key is found or the partition's start reached.
    """
    tps = list(keys)
    start, upper = await bounds(client, tps)
    latest = Latest()
    todo = {tp for tp in tps if start[tp] < upper[tp]}
    window = 1
    while todo:
        lower = {tp: max(start[tp], upper[tp] - window) for tp in todo}
        async for record in read_range(client, lower, {tp: upper[tp] for tp in todo}):
            latest.read += 1
            tp = TopicPartition(record.topic, record.partition)
            if record.key in keys[tp]:
                latest.records[tp] = record  # in offset order: the last one read is the latest
        todo = {tp for tp in todo if tp not in latest.records and lower[tp] > start[tp]}
        upper.update({tp: lower[tp] for tp in todo})
        window *= 8
    return latest


async def bounds(client: AIOKafkaConsumer, tps: list[TopicPartition]) -> tuple[dict[TopicPartition, int], ...]:
    """Each partition's first and end offsets.

    The partitions are assigned (and paused) first: the consumer then holds their leaders' metadata, and
    the offset requests do not wait for a metadata refresh and its retry backoff (0.2 s of a 0.21 s
    ``collectors stats`` before).
    """
    client.assign(tps)
    client.pause(*tps)
    return await client.beginning_offsets(tps), await client.end_offsets(tps)


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
    start, end = await bounds(client, tps)
    async for record in read_range(client, start, end):
        yield record
