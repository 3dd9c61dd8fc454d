"""Funnels of all collectors, from the ledger tables' changelog topics or from the workers' web endpoints."""

from __future__ import annotations

import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from streams.core.ledger import Ledger
from streams.tools.localstack import get_json
from streams.tools.operations import kafka
from streams.tools.operations.errors import Unreachable

LEDGER_TABLES = ("ledger-select", "ledger-post")
"""The worker's ledger tables (``streams/worker/app.py``): one ledger per source partition, key ``p{partition}``."""

STATS_PATH = "/collectors/stats/"


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
    found = await kafka.partitions_of(broker, topics)
    keys = {tp: ledger_keys(tp.partition) for topic in topics for tp in found.get(topic, [])}
    total = Ledger()
    latest = kafka.Latest()
    if keys:
        async with kafka.consumer(broker) as client:
            latest = await kafka.read_latest(client, keys)
    for record in latest.records.values():
        total.merge_json(None if record.value is None else orjson.loads(record.value))
    return ChangelogLedgers(total, [topic for topic in topics if topic not in found], latest.read)


async def from_changelogs(broker: str, app_id: str) -> tuple[Ledger, list[str]]:
    """The ledgers of every partition, as last written by any worker (running or not), summed; and the
    changelog topics that do not exist (no worker of this app id ever ran)."""
    ledgers = await latest_ledgers(broker, app_id)
    return ledgers.total, ledgers.missing


def from_workers(urls: Sequence[str]) -> Ledger:
    """The workers' ``/collectors/stats/`` ledgers summed: together, workers of one app id hold every
    partition once."""
    total = Ledger()
    for url in urls:
        endpoint = url if url.rstrip("/").endswith(STATS_PATH.rstrip("/")) else url.rstrip("/") + STATS_PATH
        try:
            total.merge_json(get_json(endpoint, timeout=5.0))
        except (OSError, urllib.error.URLError, orjson.JSONDecodeError) as exc:
            raise Unreachable(f"the worker at {endpoint} did not answer ({exc}); is it running?") from None
    return total
