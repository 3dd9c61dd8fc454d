"""Faust tables written with an explicit partition: the partition of the record being processed.

Agents here read batches mixing partitions, so the table's "current event" is not the
record a value belongs to; these helpers name the partition instead.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import faust

from streams.ledger import Ledger


def write(table: faust.Table[str, Any], partition: int, key: str, value: Any) -> None:
    """Set ``table[key]`` and send the change to the changelog's ``partition``."""
    table.data[key] = value
    table.send_changelog(partition, key, value)


class PartitionLedgers:
    """The ledgers of one agent's source partitions, kept in a Faust table (one value per partition).

    An agent calls :meth:`read` for each record it takes and :meth:`done` once the record's outcome is
    known, in any order; :meth:`save` writes the changed ledgers before the records are acknowledged.
    """

    def __init__(self, table: faust.Table[str, Any]) -> None:
        self.table = table
        self._ledgers: dict[int, Ledger] = {}
        self._pending: dict[int, dict[int, None]] = {}  # per partition: read, outcome unknown, in read order
        self._highest: dict[int, int] = {}
        self._changed: set[int] = set()

    def read(self, partition: int, offset: int) -> None:
        """A record was taken from the partition; its outcome is not known yet."""
        self._pending.setdefault(partition, {})[offset] = None
        if offset > self._highest.get(partition, -1):
            self._highest[partition] = offset

    def done(self, partition: int, offset: int) -> tuple[Ledger, bool]:
        """The record's outcome is known: its partition's ledger, and whether the record is to be counted
        in it (False: it was counted before a crash or a rebalance, and is redelivered)."""
        pending = self._pending.get(partition)
        if pending is not None:
            pending.pop(offset, None)
        ledger = self._ledgers.get(partition)
        if ledger is None:
            ledger = self._ledgers[partition] = Ledger.from_json(self.table.get(f"p{partition}"))
        self._changed.add(partition)
        if ledger.was_counted(offset):
            return ledger, False
        ledger.counted.add(offset)
        return ledger, True

    def save(self) -> None:
        """Write each changed ledger to the table, on its partition."""
        for partition in self._changed:
            ledger = self._ledgers[partition]
            pending = self._pending.get(partition)
            ledger.advance(next(iter(pending)) - 1 if pending else self._highest.get(partition, -1))
            write(self.table, partition, f"p{partition}", ledger.to_json())
        self._changed.clear()

    def reset(self) -> None:
        """Forget what is cached (after a rebalance): ledgers are read again from the table."""
        self._ledgers.clear()
        self._pending.clear()
        self._highest.clear()
        self._changed.clear()


class PartitionState(MutableMapping[str, Any]):
    """Operator memory for records of one queue partition (records are keyed, so partitioned, by collector)."""

    def __init__(self, table: faust.Table[str, Any], partition: int) -> None:
        self.table = table
        self.partition = partition

    def __getitem__(self, key: str) -> Any:
        value = self.table.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        write(self.table, self.partition, key, value)

    def __delitem__(self, key: str) -> None:
        write(self.table, self.partition, key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.keys())

    def __len__(self) -> int:
        return len(self.table)
