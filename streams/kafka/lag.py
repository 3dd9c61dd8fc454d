"""A consumer group's lag per partition (end offset minus committed offset) and the reasons of a dead-letter
topic's records, read straight from Kafka for the management API's funnel page."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streams.kafka.producing import bootstrap_address
from streams.kafka.reading import consumer, partitions, read_range, unreachable_kafka


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    end: int
    committed: int | None

    @property
    def lag(self) -> int:
        """Records not committed yet (all of them when the group never committed)."""
        return max(0, self.end - (self.committed or 0))


async def group_lag(broker: str, group: str, topics: Sequence[str]) -> list[PartitionLag]:
    """Each partition of ``topics``: its end offset and what ``group`` committed there."""
    tps = [tp for topic in topics for tp in await partitions(broker, topic)]
    if not tps:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_address(broker))
    try:
        await admin.start()
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
    except KafkaError as exc:
        raise unreachable_kafka(broker, exc) from None
    finally:
        await admin.close()
    async with consumer(broker) as client:
        ends = await client.end_offsets(tps)
    lags = []
    for tp in tps:
        offset = committed.get(tp)
        at = offset.offset if offset is not None and offset.offset >= 0 else None
        lags.append(PartitionLag(tp.topic, tp.partition, ends[tp], at))
    return lags


class DeadLetterReasons:
    """The dead-letter topic's records counted by (collector, reason), read from its start once, then only
    what was added since the last :meth:`update`."""

    def __init__(self, broker: str, topic: str) -> None:
        self.broker = broker
        self.topic = topic
        self.counts: Counter[tuple[str, str]] = Counter()
        self._client: AIOKafkaConsumer | None = None
        self._next: dict[TopicPartition, int] = {}

    async def update(self) -> Counter[tuple[str, str]]:
        """Read the records added since the last call; the counts of every record read."""
        tps = await partitions(self.broker, self.topic)
        if not tps:
            return self.counts
        if self._client is None:
            self._client = AIOKafkaConsumer(
                bootstrap_servers=bootstrap_address(self.broker), group_id=None, enable_auto_commit=False
            )
            await self._client.start()
        client = self._client
        ends = await client.end_offsets(tps)
        starts = await client.beginning_offsets(tps)
        begin = {tp: max(starts[tp], self._next.get(tp, 0)) for tp in tps}
        async for record in read_range(client, begin, ends):
            self.counts[_reason_of(record.value)] += 1
            self._next[TopicPartition(record.topic, record.partition)] = record.offset + 1
        return self.counts

    async def close(self) -> None:
        if self._client is not None:
            await self._client.stop()
            self._client = None


def _reason_of(value: bytes | None) -> tuple[str, str]:
    try:
        letter = orjson.loads(value or b"{}")
    except orjson.JSONDecodeError:
        return "", "unknown"
    if not isinstance(letter, dict):
        return "", "unknown"
    return str(letter.get("collector_id") or ""), str(letter.get("reason") or "unknown")
