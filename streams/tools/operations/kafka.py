"""Kafka reading for the operations commands: :mod:`streams.kafka.reading`, its errors as the commands'
(exit code 4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka import reading
from streams.kafka.reading import KafkaUnreachable, Offsets, read_from_start, read_range
from streams.tools.operations.errors import Unreachable

__all__ = ["Offsets", "consumer", "partitions", "read_from_start", "read_range", "unreachable_kafka"]


def unreachable_kafka(broker: str, exc: Exception) -> Unreachable:
    """The error for a broker that does not answer, saying what to check."""
    return Unreachable(str(reading.unreachable_kafka(broker, exc)))


@asynccontextmanager
async def consumer(broker: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer outside any group (offsets are never committed)."""
    try:
        async with reading.consumer(broker) as client:
            yield client
    except KafkaUnreachable as exc:
        raise Unreachable(str(exc)) from None


async def partitions(broker: str, topic: str) -> list[TopicPartition]:
    """The topic's partitions; none when the topic does not exist (it is not created)."""
    try:
        return await reading.partitions(broker, topic)
    except KafkaUnreachable as exc:
        raise Unreachable(str(exc)) from None
