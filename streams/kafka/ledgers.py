"""The workers' ledgers as their changelog topics hold them, read straight from Kafka: what
``collectors stats`` and the management API's funnel page show."""

from __future__ import annotations

from typing import Any

import orjson

from streams.core.ledger import Ledger
from streams.kafka.reading import consumer, partitions, read_from_start

LEDGER_TABLES = ("ledger-select", "ledger-post")
"""The worker's ledger tables (``streams/worker/app.py``): one ledger per source partition, key ``p{partition}``."""


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
        tps = await partitions(broker, topic)
        if not tps:
            missing.append(topic)
            continue
        latest: dict[bytes | None, Any] = {}
        async with consumer(broker) as client:
            async for record in read_from_start(client, tps):
                latest[record.key] = None if record.value is None else orjson.loads(record.value)
        for value in latest.values():
            total.merge_json(value)
    return total, missing
