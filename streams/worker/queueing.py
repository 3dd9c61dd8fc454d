"""The queue records of one select batch, handed to Kafka as one record batch per queue partition.

Sending each record with ``app.producer.send`` cost a future per record in aiokafka's accumulator (7% of the
worker in the profile, docs/PERFORMANCE.md). Here the records are added to aiokafka batch builders, one per
partition and in the order the records were added, and each batch is submitted once: one future per batch.
The partitions are the default partitioner's (``keyed_partition``), so each collector's records stay on one
partition, in order. The records are on the broker before any later offset commit: Faust's commit flushes
the producer, which waits for every submitted batch. Each record names its source (the prediction's partition
and offset) in a header, so a worker taking over a partition can find the records a killed worker queued after
its last ledger save (``streams.kafka.copies``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.kafka.copies import source_header
from streams.worker.faust_tuning import keyed_partition

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


class QueueWriter:
    """Collects a batch's queue records; :meth:`send` hands them to the producer."""

    def __init__(self, producer: Callable[[], Any], topic: str) -> None:
        self.producer = producer  # returns the started aiokafka producer
        self.topic = topic
        self._records: list[Record] = []

    def add(self, key: bytes, value: bytes, partition: int, offset: int) -> None:
        """Queue a record made from the prediction at ``offset`` of ``partition`` (sent by the next :meth:`send`)."""
        self._records.append((key, value, [source_header(partition, offset)]))

    def __len__(self) -> int:
        return len(self._records)

    async def send(self) -> None:
        """Submit the records added since the last send, one batch per partition (more when one is full)."""
        if not self._records:
            return
        records, self._records = self._records, []
        producer = self.producer()
        partitions = sorted(await producer.partitions_for(self.topic))
        by_partition: dict[int, list[Record]] = {}
        for record in records:
            by_partition.setdefault(keyed_partition(record[0], partitions, partitions), []).append(record)
        for partition, items in by_partition.items():
            batch = producer.create_batch()
            for key, value, headers in items:
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:  # full: submit
                    await producer.send_batch(batch, self.topic, partition=partition)
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None, headers=headers)  # always takes its first
            await producer.send_batch(batch, self.topic, partition=partition)
