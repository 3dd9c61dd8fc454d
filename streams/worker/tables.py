"""Faust tables written with an explicit partition: the partition of the record being processed.

Agents here read batches mixing partitions, so the table's "current event" is not the
record a value belongs to; these helpers name the partition instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from typing import Any

import faust

from streams.core import ledger as outcome
from streams.core.ledger import Ledger
from streams.kafka.copies import UNSAVED_WINDOW_MS, QueueSources

log = logging.getLogger(__name__)
CatchUp = Callable[[Any, int, int], Awaitable[Sequence[Any]]]
"""Reads a partition's records from an offset up to another: ``EventReader.catch_up``."""
MAX_REWIND = 1_000_000  # records a partition is read again at most (beyond: lost to retention, say so)


async def write_before_commit(table: faust.Table[str, Any], partition: int, key: str, value: Any) -> None:
    """Set ``table[key]`` and hand the change to the Kafka producer now.

    Faust's own table writes wait in a buffer that its commit does not always flush (it stops waiting
    after 0.1 s without a send), so an offset commit can reach the broker while the table write is lost
    with a crash: a worker killed in the kill test had committed queue offsets 27 records past its last
    saved ledger. A write handed to the producer is flushed by every commit (Faust flushes the producer,
    then commits), so a ledger is on the broker before the offsets of the records it counts.
    """
    table.data[key] = value
    await table.changelog_topic.send(
        key=key,
        value=value,
        partition=partition,
        key_serializer=table.key_serializer,
        # JSON already: recovery decodes it with the table's JSON codec, so the table then holds it decoded.
        value_serializer="raw" if isinstance(value, bytes) else table.value_serializer,
        force=True,  # not attached to the current event: sent now
    )


class PartitionLedgers:
    """The ledgers of one agent's source partitions, kept in a Faust table (one value per partition).

    An agent calls :meth:`read` for each record it takes and :meth:`done` once the record's outcome is
    known, in any order; :meth:`save` writes the changed ledgers before the records are acknowledged.

    The ledger, not Kafka's committed offset, says where a partition's work stands: when the first record
    read from a partition (after a start, a crash or a rebalance) lies past the ledger, the records between
    were never counted, so :meth:`read` asks for them to be read (from the first of them).
    In the kill tests the worker taking over started 75-110 records past the ledger; the destination held
    every input (re-queued copies), but those queue records were never processed. Reading a record twice is
    harmless: input ids are idempotent and a record is counted once.
    """

    def __init__(self, table: faust.Table[str, Any], *, queue: QueueSources | None = None) -> None:
        self.table = table
        self.queue = queue  # the selecting agent's: where it searches for copies no ledger counts
        self._ledgers: dict[int, Ledger] = {}
        self._pending: dict[int, set[int]] = {}  # per partition: offsets read whose outcome is not known yet
        self._highest: dict[int, int] = {}
        self._changed: set[int] = set()
        self._saved: dict[str, tuple[bytes, dict[str, Any]]] = {}  # table key: (value written, its summary)
        self._loaded: dict[int, Ledger] = {}  # each held ledger as read from the table: counted elsewhere
        self._retired = Ledger()  # what this process counted in ledgers it held before a rebalance
        self.caught_up = 0
        """Records read again with :meth:`take`'s ``catch_up`` since the process started."""

    def read(self, partition: int, offset: int) -> int | None:
        """A record was taken from the partition; its outcome is not known yet.

        Returns the offset to read the partition from again, when records before this one were never
        counted (once per partition until :meth:`reset`): the caller reads them (up to this one) before
        anything else of the partition is saved; None otherwise.
        """
        self._pending.setdefault(partition, set()).add(offset)
        highest = self._highest.get(partition)
        if highest is None:
            return self._first_read(partition, offset)
        if offset > highest:
            self._highest[partition] = offset
        return None

    async def take(self, event: Any, catch_up: CatchUp) -> list[Any]:
        """:meth:`read` the event's record; the events to process, in order: the records it shows were
        never counted (read with ``catch_up``, and read here too), then the event itself."""
        message = event.message
        first = message.partition not in self._highest
        start = self.read(message.partition, message.offset)
        if first and self.queue is not None:  # before anything of the partition is counted here
            await self._count_copies(self.queue, message.partition)
        if start is None:
            return [event]
        missed = await catch_up(message.tp, start, message.offset)
        self.caught_up += len(missed)
        for record in missed:
            self.read(record.message.partition, record.message.offset)
        return [*missed, event]

    async def _count_copies(self, queue: QueueSources, partition: int) -> None:
        """Count the queue records of the partition that a worker sent after the ledger's last save and before
        it stopped (killed mid-batch): each is a copy of an input queued again here (``requeued``)."""
        ledger = self._ledger(partition)
        since = ledger.saved_at_ms
        if since is None:
            if ledger.offset >= 0 or ledger.counted:
                return  # saved by a version that kept no time: not searched
            since = int(time.time() * 1000) - UNSAVED_WINDOW_MS
        found = await queue.copies(partition, since_ms=since, seen=ledger.copies_seen, counted=ledger.was_counted)
        for key in found.keys:
            ledger.count(key.decode(), outcome.REQUEUED)
        ledger.copies_seen = found.seen
        self._changed.add(partition)
        if found.keys:
            log.info(
                "%s partition %d: %d queue records sent after the last save by a worker that stopped, counted as"
                " requeued",
                self.table.name,
                partition,
                len(found.keys),
            )

    def _first_read(self, partition: int, offset: int) -> int | None:
        ledger = self._ledger(partition)
        self._highest[partition] = max(offset, ledger.offset)
        start = ledger.offset + 1  # a new ledger: from the partition's start (Kafka resets 0 to the earliest)
        if offset <= start or all(o in ledger.counted for o in range(start, offset)):
            return None
        if offset - start > MAX_REWIND:
            log.error(
                "%s partition %d: the first record read is %d, %d past the ledger; not reading them again",
                self.table.name,
                partition,
                offset,
                offset - start,
            )
            return None
        log.warning(
            "%s partition %d: the first record read is %d, but the ledger counted up to %d; reading the records"
            " between again",
            self.table.name,
            partition,
            offset,
            ledger.offset,
        )
        return start

    def _ledger(self, partition: int) -> Ledger:
        ledger = self._ledgers.get(partition)
        if ledger is None:
            stored = self.table.get(f"p{partition}")
            ledger = self._ledgers[partition] = Ledger.from_json(stored)
            self._loaded[partition] = Ledger.from_json(stored)
        return ledger

    def counted_here(self) -> Ledger:
        """What this process counted since it started (in the ledgers it holds and held): monotonic, unlike
        the ledgers, which move between workers with their partitions."""
        counted = Ledger()
        counted.add_difference(self._retired, Ledger())
        for partition, ledger in self._ledgers.items():
            counted.add_difference(ledger, self._loaded[partition])
        return counted

    def done(self, partition: int, offset: int) -> tuple[Ledger, bool]:
        """The record's outcome is known: its partition's ledger, and whether the record is to be counted
        in it (False: it was counted before a crash or a rebalance, and is redelivered)."""
        pending = self._pending.get(partition)
        if pending is not None:
            pending.discard(offset)
        ledger = self._ledger(partition)
        self._changed.add(partition)
        if ledger.was_counted(offset):
            return ledger, False
        ledger.counted.add(offset)
        return ledger, True

    def note(self, partition: int, offset: int, collector_id: str, name: str, n: int = 1) -> None:
        """Count ``name`` for a record besides its outcome (unless the record was counted before a crash or a
        rebalance); :meth:`done` comes after."""
        ledger = self._ledger(partition)
        if not ledger.was_counted(offset):
            ledger.count(collector_id, name, n)
            self._changed.add(partition)

    async def save(self) -> None:
        """Write each changed ledger to the table, on its partition, before any later offset commit."""
        changed, self._changed = self._changed, set()  # outcomes counted while this awaits: the next save
        for partition in changed:
            ledger = self._ledgers[partition]
            pending = self._pending.get(partition)
            # min(), not the first read: records caught up with are read after the record that showed them.
            ledger.advance(min(pending) - 1 if pending else self._highest.get(partition, -1))
            ledger.saved_at_ms = int(time.time() * 1000)
            key, value = f"p{partition}", ledger.to_bytes()
            self._saved[key] = (value, ledger.snapshot(funnels=False))
            await write_before_commit(self.table, partition, key, value)

    def summary(self, key: str, value: Any) -> dict[str, Any] | None:
        """The events and totals of the ledger ``value``, when it is the one this agent wrote last under
        ``key`` (None otherwise: read it).

        A stats summary then costs the same with 1,000 collectors as with 10: decoding one ledger of 1,000
        funnels to read its totals took ~250 µs, eight per poll (docs/PERFORMANCE.md). Matched by identity,
        so a value the table got otherwise (recovered, or written by another worker before a rebalance) is
        read as stored.
        """
        saved = self._saved.get(key)
        return saved[1] if saved is not None and saved[0] is value else None

    def reset(self) -> None:
        """Forget what is cached (after a rebalance): ledgers are read again from the table."""
        for partition, ledger in self._ledgers.items():
            self._retired.add_difference(ledger, self._loaded[partition])
        self._ledgers.clear()
        self._loaded.clear()
        if self.queue is not None:
            self.queue.clear()
        self._pending.clear()
        self._highest.clear()
        self._changed.clear()


class StateWrites:
    """Changes to a table of operator memory, set at once and sent to its changelog by :meth:`flush`, which
    the posting agent awaits before acknowledging the records that made them."""

    def __init__(self, table: faust.Table[str, Any], *, queue: QueueSources | None = None) -> None:
        self.table = table
        self.queue = queue  # the selecting agent's: where it searches for copies no ledger counts
        self._unsent: dict[tuple[int, str], Any] = {}

    def put(self, partition: int, key: str, value: Any) -> None:
        self.table.data[key] = value
        self._unsent[(partition, key)] = value

    async def flush(self) -> None:
        unsent, self._unsent = self._unsent, {}
        for (partition, key), value in unsent.items():
            await write_before_commit(self.table, partition, key, value)


class PartitionState(MutableMapping[str, Any]):
    """Operator memory for records of one queue partition (records are keyed, so partitioned, by collector)."""

    def __init__(self, writes: StateWrites, partition: int) -> None:
        self.writes = writes
        self.table = writes.table
        self.partition = partition

    def __getitem__(self, key: str) -> Any:
        value = self.table.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.put(self.partition, key, value)

    def __delitem__(self, key: str) -> None:
        self.writes.put(self.partition, key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.keys())

    def __len__(self) -> int:
        return len(self.table)
