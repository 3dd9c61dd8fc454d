"""Reading the funnel from the ledger changelogs costs one record per partition, however many ledgers were
saved before: the same answer as reading every changelog from its start."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.core.ledger import Ledger
from streams.kafka.producing import ensure_topic
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.operations import kafka, stats

pytestmark = pytest.mark.kafka
PARTITIONS = 4


def _ledger(partition: int, save: int) -> Ledger:
    """The ledger a worker would have saved the ``save``-th time on ``partition``."""
    ledger = Ledger()
    ledger.events["events"] = save * 10 + partition
    ledger.judged(f"collector-{partition % 2}", "queued")
    ledger.count(f"collector-{partition % 2}", "posted", save)
    ledger.advance(save * 10)
    return ledger


async def _save_ledgers(broker: str, app_id: str, saves: range, stray_key_last: bool = False) -> None:
    """``saves`` ledger saves per partition of both ledger tables, keyed as Faust's JSON key serializer does."""
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        for table in stats.LEDGER_TABLES:
            topic = stats.changelog_topic(app_id, table)
            await ensure_topic(broker, topic, PARTITIONS)
            for save in saves:
                for partition in range(PARTITIONS):
                    key = orjson.dumps(f"p{partition}")
                    await producer.send(topic, _ledger(partition, save).to_bytes(), key=key, partition=partition)
            if stray_key_last:  # a record of another key after the ledger: the read looks further back
                await producer.send(topic, b"{}", key=b'"other"', partition=0)
        await producer.flush()
    finally:
        await producer.stop()


async def _every_record_read(broker: str, app_id: str) -> tuple[dict[str, Any], int]:
    """The funnel as read from the changelogs' start (each key's last value), and the records read."""
    total, read = Ledger(), 0
    async with kafka.consumer(broker) as client:
        for table in stats.LEDGER_TABLES:
            latest: dict[tuple[int, bytes | None], Any] = {}
            tps = await kafka.partitions(broker, stats.changelog_topic(app_id, table))
            async for record in kafka.read_from_start(client, tps):
                read += 1
                if record.key != b'"other"':
                    latest[(record.partition, record.key)] = orjson.loads(record.value)
            for value in latest.values():
                total.merge_json(value)
    return total.snapshot(), read


async def test_stats_read_one_record_per_partition_however_many_ledgers_were_saved(
    kafka: LocalKafka, unique: str
) -> None:
    broker = kafka.bootstrap_servers
    await _save_ledgers(broker, unique, range(1, 1001))
    first = await stats.latest_ledgers(broker, unique)
    assert first.missing == []
    assert first.records_read == len(stats.LEDGER_TABLES) * PARTITIONS
    expected, read_all = await _every_record_read(broker, unique)
    assert read_all == len(stats.LEDGER_TABLES) * PARTITIONS * 1000
    assert first.total.snapshot() == expected
    assert expected["totals"]["posted"] == len(stats.LEDGER_TABLES) * PARTITIONS * 1000

    await _save_ledgers(broker, unique, range(1001, 3001))  # three times the history
    again = await stats.latest_ledgers(broker, unique)
    assert again.records_read == first.records_read
    assert again.total.snapshot() == (await _every_record_read(broker, unique))[0]
    assert again.total.totals["posted"] == len(stats.LEDGER_TABLES) * PARTITIONS * 3000


async def test_a_ledger_followed_by_another_key_is_found_a_few_records_back(kafka: LocalKafka, unique: str) -> None:
    broker = kafka.bootstrap_servers
    await _save_ledgers(broker, unique, range(1, 501), stray_key_last=True)
    latest = await stats.latest_ledgers(broker, unique)
    assert latest.total.snapshot() == (await _every_record_read(broker, unique))[0]
    # Partition 0 of each table: its last record, then a window of 8 before the end; the others: one record.
    assert latest.records_read == len(stats.LEDGER_TABLES) * (PARTITIONS - 1 + 1 + 8)


async def test_stats_of_an_app_id_never_run_name_the_missing_changelogs(kafka: LocalKafka, unique: str) -> None:
    latest = await stats.latest_ledgers(kafka.bootstrap_servers, unique)
    assert latest.missing == [stats.changelog_topic(unique, table) for table in stats.LEDGER_TABLES]
    assert (latest.records_read, latest.total.snapshot()) == (0, Ledger().snapshot())
