"""Partition ledgers count each record once, also when outcomes come out of order and after a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.worker.tables import PartitionLedgers


class ChangelogTable:
    """What PartitionLedgers uses of a Faust table: its data, and its changelog topic (writes kept in order)."""

    key_serializer = value_serializer = "json"
    name = "ledger-test"

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.changelog: list[tuple[int, str, Any]] = []
        self.changelog_topic = self

    def get(self, key: str) -> Any:
        return self.data.get(key)

    async def send(self, *, key: str, value: Any, partition: int, **options: Any) -> None:
        self.changelog.append((partition, key, value))


def stored(table: ChangelogTable, key: str) -> Any:
    """The ledger document the table holds under ``key`` (stored as JSON bytes)."""
    return orjson.loads(table.data[key])


def save(ledgers: PartitionLedgers) -> None:
    asyncio.run(ledgers.save())


def count(ledgers: PartitionLedgers, partition: int, offset: int) -> bool:
    ledger, fresh = ledgers.done(partition, offset)
    if fresh:
        ledger.count("c", "posted")
    return fresh


def test_in_order_records_advance_the_offset() -> None:
    table = ChangelogTable()
    ledgers = PartitionLedgers(table)  # type: ignore[arg-type]
    for offset in range(3):
        ledgers.read(0, offset)
        assert count(ledgers, 0, offset)
    save(ledgers)
    assert stored(table, "p0")["offset"] == 2 and stored(table, "p0")["counted"] == []
    assert table.changelog[-1][0] == 0


def test_outcomes_out_of_order_keep_the_offset_below_the_first_pending_record() -> None:
    table = ChangelogTable()
    ledgers = PartitionLedgers(table)  # type: ignore[arg-type]
    for offset in (0, 1, 2):
        ledgers.read(1, offset)
    assert count(ledgers, 1, 2)
    save(ledgers)
    assert stored(table, "p1")["offset"] == -1 and stored(table, "p1")["counted"] == [2]

    restarted = PartitionLedgers(table)  # type: ignore[arg-type]
    for offset in (0, 1, 2):  # redelivered from the committed offset
        restarted.read(1, offset)
    assert [count(restarted, 1, offset) for offset in (0, 1, 2)] == [True, True, False]
    save(restarted)
    assert stored(table, "p1")["offset"] == 2 and stored(table, "p1")["counted"] == []
    assert stored(table, "p1")["collectors"]["c"]["posted"] == 3


@given(st.permutations(list(range(30))), st.integers(0, 30))
def test_a_crash_anywhere_never_counts_a_record_twice_or_misses_one(order: list[int], crash_after: int) -> None:
    """Outcomes in any order; the worker saves after each, and crashes after ``crash_after`` of them. The
    next worker reads every record again from the start (nothing was committed) and counts the rest."""
    table = ChangelogTable()
    first = PartitionLedgers(table)  # type: ignore[arg-type]
    for offset in range(30):
        first.read(0, offset)
    for offset in order[:crash_after]:
        count(first, 0, offset)
        save(first)
    second = PartitionLedgers(table)  # type: ignore[arg-type]
    for offset in range(30):
        second.read(0, offset)
    for offset in reversed(range(30)):
        count(second, 0, offset)
    save(second)
    assert stored(table, "p0")["collectors"]["c"]["posted"] == 30
    assert stored(table, "p0")["offset"] == 29 and stored(table, "p0")["counted"] == []


def test_records_read_again_after_a_seek_keep_the_offset_below_every_pending_record() -> None:
    """Faust seeks a resumed partition to its committed offset: records already read come again, lower
    offsets after higher ones. The saved offset must stay below the lowest record still pending."""
    table = ChangelogTable()
    ledgers = PartitionLedgers(table)  # type: ignore[arg-type]
    for offset in (5, 6, 7):
        ledgers.read(0, offset)
    for offset in (5, 6):  # read again after a seek, while 5 and 6 are still held
        ledgers.read(0, offset)
    assert count(ledgers, 0, 7)
    save(ledgers)
    assert stored(table, "p0")["offset"] == 4 and stored(table, "p0")["counted"] == [7]
    assert [count(ledgers, 0, offset) for offset in (6, 5, 6, 5)] == [True, True, False, False]
    save(ledgers)
    assert stored(table, "p0")["offset"] == 7 and stored(table, "p0")["collectors"]["c"]["posted"] == 3


def _ledger_counted_up_to(table: ChangelogTable, offset: int) -> None:
    first = PartitionLedgers(table)  # type: ignore[arg-type]
    for n in range(offset + 1):
        first.read(0, n)
        count(first, 0, n)
    save(first)


def test_a_first_record_past_the_ledger_asks_to_read_the_records_between_again() -> None:
    """The committed offset was ahead of the ledger: records 5-9 were never counted. The agent reads them
    (``EventReader.catch_up``) before going on."""
    table = ChangelogTable()
    _ledger_counted_up_to(table, 4)
    ledgers = PartitionLedgers(table)  # type: ignore[arg-type]
    assert ledgers.read(0, 10) == 5
    for offset in (5, 6, 8, 9):  # 7 holds no record (say a transaction marker)
        assert ledgers.read(0, offset) is None
    assert count(ledgers, 0, 9) and count(ledgers, 0, 10)
    save(ledgers)
    assert stored(table, "p0")["offset"] == 4 and stored(table, "p0")["counted"] == [9, 10], "5, 6, 8 pending"
    assert all(count(ledgers, 0, offset) for offset in (5, 6, 8))
    assert ledgers.read(0, 11) is None and count(ledgers, 0, 11)
    save(ledgers)
    assert stored(table, "p0")["offset"] == 11 and stored(table, "p0")["counted"] == []
    assert stored(table, "p0")["collectors"]["c"]["posted"] == 11


def test_a_new_ledger_reads_its_partition_from_the_start() -> None:
    """A partition with no committed offset resumes where the fetcher was when a rebalance came: in the
    bench's two-worker run, 4,985 queue records fetched and held before the first commit were never read
    again. Offset 0 is the partition's start (Kafka resets it to the earliest record still kept)."""
    table = ChangelogTable()
    assert PartitionLedgers(table).read(0, 0) is None  # type: ignore[arg-type]
    assert PartitionLedgers(table).read(0, 500) == 0  # type: ignore[arg-type]


def test_a_ledger_up_to_date_asks_for_nothing() -> None:
    table = ChangelogTable()
    _ledger_counted_up_to(table, 4)
    assert PartitionLedgers(table).read(0, 5) is None  # type: ignore[arg-type]


def test_the_summary_of_a_saved_ledger_is_its_events_and_totals_until_the_table_holds_another_value() -> None:
    table = ChangelogTable()
    ledgers = PartitionLedgers(table)  # type: ignore[arg-type]
    for offset in range(3):
        ledgers.read(1, offset)
        ledger, _ = ledgers.done(1, offset)
        ledger.events["events"] += 1
        ledger.count(f"c{offset % 2}", "posted")
    save(ledgers)
    value = table.data["p1"]
    assert ledgers.summary("p1", value) == {"events": {"events": 3}, "totals": {"posted": 3}}
    document = stored(table, "p1")
    assert {"events": document["events"], "totals": document["totals"]} == ledgers.summary("p1", value)
    assert ledgers.summary("p1", bytes(bytearray(value))) is None  # equal bytes, but not what this agent wrote: read it
    assert ledgers.summary("p0", value) is None


def test_what_this_process_counted_only_grows_across_a_rebalance() -> None:
    table = ChangelogTable()
    earlier = PartitionLedgers(table)  # type: ignore[arg-type]  # another worker, before this one held p0
    for offset in range(5):
        earlier.read(0, offset)
        count(earlier, 0, offset)
    save(earlier)

    ledgers = PartitionLedgers(table)  # type: ignore[arg-type]
    for offset in range(5, 8):
        ledgers.read(0, offset)
        count(ledgers, 0, offset)
    assert ledgers.counted_here().collectors["c"]["posted"] == 3  # not the 5 counted before it held p0
    save(ledgers)
    ledgers.reset()  # a rebalance: p0 may go elsewhere; what was counted here stays counted here
    assert ledgers.counted_here().collectors["c"]["posted"] == 3
    for offset in range(8, 10):  # p0 came back: its ledger is read again from the table
        ledgers.read(0, offset)
        count(ledgers, 0, offset)
    assert ledgers.counted_here().collectors["c"]["posted"] == 5
    assert ledgers.counted_here().totals["posted"] == 5
