"""Funnels of all collectors, from the ledger tables' changelog topics or from the workers' web endpoints."""

from __future__ import annotations

import urllib.error
from collections.abc import Sequence
from typing import Any

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


async def from_changelogs(broker: str, app_id: str) -> tuple[Ledger, list[str]]:
    """The ledgers of every partition, as last written by any worker (running or not), summed; and the
    changelog topics that do not exist (no worker of this app id ever ran)."""
    total = Ledger()
    missing: list[str] = []
    for table in LEDGER_TABLES:
        topic = changelog_topic(app_id, table)
        tps = await kafka.partitions(broker, topic)
        if not tps:
            missing.append(topic)
            continue
        latest: dict[bytes | None, Any] = {}
        async with kafka.consumer(broker) as client:
            async for record in kafka.read_from_start(client, tps):
                latest[record.key] = None if record.value is None else orjson.loads(record.value)
        for value in latest.values():
            total.merge_json(value)
    return total, missing


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
