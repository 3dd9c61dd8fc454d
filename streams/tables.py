"""Faust tables written with an explicit partition: the partition of the record being processed.

Agents here read batches (``take_events``) mixing partitions, so the table's "current event" is not the
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
    """The ledgers of one agent's source partitions, loaded from and saved to a Faust table per batch."""

    def __init__(self, table: faust.Table[str, Any]) -> None:
        self.table = table
        self._touched: dict[int, Ledger] = {}

    def for_record(self, partition: int, offset: int) -> tuple[Ledger, bool]:
        """The partition's ledger, and whether this offset is new (False: counted before, a redelivery)."""
        ledger = self._touched.get(partition)
        if ledger is None:
            ledger = self._touched[partition] = Ledger.from_json(self.table.get(f"p{partition}"))
        if offset <= ledger.offset:
            return ledger, False
        ledger.offset = offset
        return ledger, True

    def save(self) -> None:
        """Write each touched partition's ledger to the table, on that partition."""
        for partition, ledger in self._touched.items():
            write(self.table, partition, f"p{partition}", ledger.to_json())
        self._touched.clear()


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
