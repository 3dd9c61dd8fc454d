"""Per-collector accounting: every event that reaches a worker ends in exactly one counted outcome."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

SEEN = "seen"
PAUSED = "paused"
QUEUED = "queued"
POSTED = "posted"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"
DROPPED = "dropped"
FILTERED_PREFIX = "out:"

EVENTS = "events"
DECODED = "decoded"
INVALID = "dead_lettered"
UNMATCHED = "unmatched"


class Ledger:
    """Counters of one worker (or one ``simulate`` run): events overall, and a funnel per collector."""

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        self.collectors: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def count(self, collector_id: str, outcome: str, n: int = 1) -> None:
        self.collectors[collector_id][outcome] += n

    def filtered(self, collector_id: str, label: str) -> None:
        self.collectors[collector_id][FILTERED_PREFIX + label] += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy: ``{"events": {...}, "collectors": {id: {outcome: n}}}``."""
        return {
            "events": dict(self.events),
            "collectors": {cid: dict(counts) for cid, counts in sorted(self.collectors.items())},
        }


def funnel_rows(funnel: dict[str, int]) -> list[tuple[str, int]]:
    """A collector's funnel in reading order: seen, each filter, queued, then delivery outcomes."""
    order = [SEEN, PAUSED]
    filters = sorted(k for k in funnel if k.startswith(FILTERED_PREFIX))
    order += filters + [QUEUED, POSTED, DUPLICATE, DEAD_LETTERED, DROPPED]
    return [(name, funnel.get(name, 0)) for name in order if name in funnel or name in (SEEN, QUEUED, POSTED)]
