"""The queue records of one select batch, handed to Kafka as one record batch per queue partition.

Sending each record with ``app.producer.send`` cost a future per record in aiokafka's accumulator (7% of the
worker in the profile, docs/PERFORMANCE.md). Here the records are added to aiokafka batch builders, one per
partition and in the order the records were added, and each batch is submitted once: one future per batch.
The partitions are the default partitioner's (``keyed_partition``), so each collector's records stay on one
partition, in order. The records are on the broker before any later offset commit: Faust's commit flushes
the producer, which waits for every submitted batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.worker.faust_tuning import keyed_partition


class QueueWriter:
    """Collects a batch's queue records; :meth:`send` hands them to the producer."""

    def __init__(self, producer: Callable[[], Any], topic: str) -> None:
        self.producer = producer  # returns the started aiokafka producer
        self.topic = topic
        self._records: list[tuple[bytes, bytes]] = []

    def add(self, key: bytes, value: bytes) -> None:
        """Queue a record (sent by the next :meth:`send`)."""
        self._records.append((key, value))

    def __len__(self) -> int:
        return len(self._records)

    async def send(self) -> None:
        """Submit the records added since the last send, one batch per partition (more when one is full)."""
        if not self._records:
            return
        records, self._records = self._records, []
        producer = self.producer()
        partitions = sorted(await producer.partitions_for(self.topic))
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, value in records:
            by_partition.setdefault(keyed_partition(key, partitions, partitions), []).append((key, value))
        for partition, items in by_partition.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: submit, start another
                    await producer.send_batch(batch, self.topic, partition=partition)
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)  # a batch always takes its first record
            await producer.send_batch(batch, self.topic, partition=partition)
