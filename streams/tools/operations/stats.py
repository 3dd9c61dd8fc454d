"""Funnels of all collectors, from the ledger tables' changelog topics or from the workers' web endpoints."""

from __future__ import annotations

import urllib.error
from collections.abc import Sequence

import orjson

from streams.core.ledger import Ledger
from streams.kafka import ledgers
from streams.kafka.ledgers import LEDGER_TABLES, changelog_topic
from streams.kafka.reading import KafkaUnreachable
from streams.tools.operations.errors import Unreachable

__all__ = ["LEDGER_TABLES", "STATS_PATH", "changelog_topic", "from_changelogs", "from_workers", "latest_ledgers"]

STATS_PATH = "/collectors/stats/"


async def latest_ledgers(broker: str, app_id: str) -> ledgers.ChangelogLedgers:
    """:func:`streams.kafka.ledgers.latest_ledgers` (the funnel read from the changelogs' ends, with the records
    it read), an unreachable broker reported as the commands report it."""
    try:
        return await ledgers.latest_ledgers(broker, app_id)
    except KafkaUnreachable as exc:
        raise Unreachable(str(exc)) from None


async def from_changelogs(broker: str, app_id: str) -> tuple[Ledger, list[str]]:
    """:func:`streams.kafka.ledgers.from_changelogs`, an unreachable broker reported as the commands report it."""
    try:
        return await ledgers.from_changelogs(broker, app_id)
    except KafkaUnreachable as exc:
        raise Unreachable(str(exc)) from None


def from_workers(urls: Sequence[str]) -> Ledger:
    """The workers' ``/collectors/stats/`` ledgers summed: together, workers of one app id hold every
    partition once."""
    from streams.tools.localstack import get_json  # only here: `collectors stats --broker` starts without it

    total = Ledger()
    for url in urls:
        endpoint = url if url.rstrip("/").endswith(STATS_PATH.rstrip("/")) else url.rstrip("/") + STATS_PATH
        try:
            total.merge_json(get_json(endpoint, timeout=5.0))
        except (OSError, urllib.error.URLError, orjson.JSONDecodeError) as exc:
            raise Unreachable(f"the worker at {endpoint} did not answer ({exc}); is it running?") from None
    return total
