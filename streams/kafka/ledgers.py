"""The workers' ledgers as their changelog topics hold them, read straight from Kafka: what
``collectors stats`` and the management API's funnel page show."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from streams.core.ledger import Ledger
from streams.kafka.reading import Latest, consumer, partitions_of, read_latest

LEDGER_TABLES = ("ledger-select", "ledger-post")
"""The worker's ledger tables (``streams/worker/app.py``): one ledger per source partition, key ``p{partition}``."""


def changelog_topic(app_id: str, table: str) -> str:
    """The topic Faust keeps a table in: ``{app_id}-{table}-changelog``."""
    return f"{app_id}-{table}-changelog"


@dataclass
class ChangelogLedgers:
    """Every partition's last ledger, summed; the changelog topics that do not exist (no worker of this app id
    ever ran); and how many changelog records were read to find them."""

    total: Ledger
    missing: list[str]
    records_read: int


def ledger_keys(partition: int) -> set[bytes]:
    """The keys a ledger table's changelog partition holds its ledger under: ``p{partition}``, as Faust's JSON
    key serializer writes it (and raw, as a producer of its own might)."""
    key = f"p{partition}"
    return {orjson.dumps(key), key.encode()}


async def latest_ledgers(broker: str, app_id: str) -> ChangelogLedgers:
    """The ledger tables' last ledgers, read from the end of their changelogs.

    A worker writes the ledger of source partition ``n`` to changelog partition ``n`` under key ``p{n}``, so
    each changelog partition's last record is its current ledger: the read costs one record per partition
    (O(tables x partitions)), however long the changelog has grown between compactions.
    """
    topics = [changelog_topic(app_id, table) for table in LEDGER_TABLES]
    found = await partitions_of(broker, topics)
    keys = {tp: ledger_keys(tp.partition) for topic in topics for tp in found.get(topic, [])}
    total = Ledger()
    latest = Latest()
    if keys:
        async with consumer(broker) as client:
            latest = await read_latest(client, keys)
    for record in latest.records.values():
        total.merge_json(None if record.value is None else orjson.loads(record.value))
    return ChangelogLedgers(total, [topic for topic in topics if topic not in found], latest.read)


async def from_changelogs(broker: str, app_id: str) -> tuple[Ledger, list[str]]:
    """The ledgers of every partition, as last written by any worker (running or not), summed; and the
    changelog topics that do not exist (no worker of this app id ever ran)."""
    ledgers = await latest_ledgers(broker, app_id)
    return ledgers.total, ledgers.missing
