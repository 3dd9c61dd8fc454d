"""Queue records that a killed worker sent after its last ledger save, found again by the worker taking over.

The selecting agent queues a batch's records, then saves the ledger that counts them. A worker killed between
the two leaves queue records that no saved ledger counts, and the worker taking the partition over processes
the batch again and queues it again. Every queue record carries its source in a header (``src``:
``{partition}:{offset}``), so the new holder searches the queue topic for records of its partition whose
offset the ledger does not count, from a little before the ledger was saved (by the clock of the worker that
saved it) to the end, and counts each one before it goes on: every queue record is then counted once. A search
starts where the previous one ended (the ledger keeps those offsets), so no copy is counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from streams.kafka.reading import bounds, consumer, partitions, read_range

SOURCE_HEADER = "src"
CLOCK_MARGIN_MS = 1_000
"""How far before the ledger's save the search starts: the workers' clocks may differ by this much (NTP keeps
them within milliseconds); more would read more of the queue at every rebalance."""
UNSAVED_WINDOW_MS = 600_000
"""A partition whose ledger was never saved (or was saved by a version that kept no time) is searched this far
back: a worker that crashed before its first save did so recently."""


def source_header(partition: int, offset: int) -> tuple[str, bytes]:
    """The header naming a queue record's source: the prediction's partition and offset."""
    return SOURCE_HEADER, f"{partition}:{offset}".encode()


def _source(headers: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]] | None) -> tuple[int, int] | None:
    for name, value in headers or ():
        if name == SOURCE_HEADER:
            partition, _, offset = value.partition(b":")
            return int(partition), int(offset)
    return None


@dataclass(frozen=True, slots=True)
class Sourced:
    """A queue record with a source header: where it is, where it came from, and its key (the collector id)."""

    queue_partition: int
    queue_offset: int
    partition: int
    offset: int
    key: bytes


@dataclass
class Copies:
    """Queue records of one source partition that its ledger does not count: the collector key of each, and
    the queue offsets the search reached (where the next one starts)."""

    keys: list[bytes] = field(default_factory=list)
    seen: dict[int, int] = field(default_factory=dict)


class QueueSources:
    """Searches the queue topic for copies. The window read is kept until :meth:`clear` (a rebalance): the
    partitions one worker held were saved at about the same time, so a takeover of several reads it once."""

    def __init__(self, broker: str, queue_topic: str) -> None:
        self.broker = broker
        self.queue_topic = queue_topic
        self.read = 0
        """Queue records read by searches since the process started."""
        self._start: dict[int, int] = {}  # queue partition -> first offset of the window kept
        self._end: dict[int, int] = {}  # queue partition -> end of the window kept
        self._records: list[Sourced] = []

    def clear(self) -> None:
        """Forget the window read (a rebalance: the next search reads afresh)."""
        self._start, self._end, self._records = {}, {}, []

    async def copies(
        self, partition: int, *, since_ms: int, seen: Mapping[int, int], counted: Callable[[int], bool]
    ) -> Copies:
        """The queue records from source ``partition`` whose source offset is not ``counted``, among those
        written after ``since_ms`` (less :data:`CLOCK_MARGIN_MS`) and at or after ``seen`` (queue partition
        -> offset)."""
        tps = await partitions(self.broker, self.queue_topic)
        if not tps:
            return Copies()
        async with consumer(self.broker) as client:
            first, end = await bounds(client, tps)
            after = await client.offsets_for_times({tp: max(0, since_ms - CLOCK_MARGIN_MS) for tp in tps})
            wanted = {}
            for tp in tps:
                at = after.get(tp)
                wanted[tp.partition] = max(first[tp], seen.get(tp.partition, 0), end[tp] if at is None else at.offset)
            if any(self._start.get(p, offset + 1) > offset for p, offset in wanted.items()):
                self.clear()  # the window kept does not start early enough: read this one
                self._start, self._end = dict(wanted), dict(wanted)
            await self._extend(client, {tp: self._end[tp.partition] for tp in tps}, end)
        copies = Copies(seen={tp.partition: end[tp] for tp in tps})
        for record in self._records:
            if (
                record.partition == partition
                and record.queue_offset >= wanted[record.queue_partition]
                and not counted(record.offset)
            ):
                copies.keys.append(record.key)
        return copies

    async def _extend(self, client: Any, start: dict[TopicPartition, int], end: dict[TopicPartition, int]) -> None:
        async for record in read_range(client, start, end):
            self.read += 1
            source = _source(record.headers)
            if source is not None:
                self._records.append(Sourced(record.partition, record.offset, *source, record.key or b""))
        for tp, offset in end.items():
            self._end[tp.partition] = max(self._end.get(tp.partition, 0), offset)
