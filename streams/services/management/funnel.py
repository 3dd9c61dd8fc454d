"""What the funnel page shows: every collector's funnel from the workers' ledger changelogs (the reader
``collectors stats`` uses), its rates over the last minute, the consumer group's lag per partition, the
dead letters by reason, and the collectors' status and last error from the control topic."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas.management import StoredCollector
from streams.core import ledger as outcome
from streams.core.clock import utc_now
from streams.core.ledger import Ledger, Tally
from streams.kafka.lag import DeadLetterReasons, group_lag
from streams.kafka.ledgers import from_changelogs

RATE_WINDOW_S = 60.0
RATED = (outcome.SEEN, outcome.QUEUED, outcome.POSTED)
NOT_JUDGED = {outcome.PAUSED: "while paused", outcome.OPERATOR_ERRORS: "operator errors"}
"""Events a collector saw but no step judged, shown with the steps' outcomes."""
STEPS = (outcome.QUEUED, outcome.POSTED, outcome.DUPLICATE, outcome.DEAD_LETTERED, outcome.DROPPED)


@dataclass(frozen=True, slots=True)
class Watched:
    """The workers the page watches: their app id (consumer group, changelog topics' prefix) and topics."""

    broker: str
    app_id: str = "collectors"
    predictions_topic: str = "predictions"
    queue_topic: str = "collectors-queue"
    dead_letter_topic: str = "collectors-dead-letters"


class FunnelWatch:
    """Reads what the page shows, at most once per ``every_s`` however many pages poll."""

    def __init__(
        self, watched: Watched, stored: Callable[[], dict[str, StoredCollector]], *, every_s: float = 1.0
    ) -> None:
        self.watched = watched
        self.stored = stored
        self.every_s = every_s
        self.dead_letters = DeadLetterReasons(watched.broker, watched.dead_letter_topic)
        self._lock = asyncio.Lock()
        self._read_at = 0.0
        self._latest: dict[str, Any] = {}
        self._history: deque[tuple[float, dict[str, Tally]]] = deque()

    async def read(self) -> dict[str, Any]:
        """The latest reading (taken now when the last one is older than ``every_s``), for every collector."""
        async with self._lock:
            if not self._latest or time.monotonic() - self._read_at >= self.every_s:
                self._latest = await self._take()
                self._read_at = time.monotonic()
            return self._latest

    async def close(self) -> None:
        await self.dead_letters.close()

    async def _take(self) -> dict[str, Any]:
        watched = self.watched
        ledger, missing = await from_changelogs(watched.broker, watched.app_id)
        lags = await group_lag(watched.broker, watched.app_id, [watched.predictions_topic, watched.queue_topic])
        reasons = await self.dead_letters.update()
        rates = self._rates(ledger)
        stored = self.stored()
        collectors = [
            _collector(cid, ledger.collectors.get(cid) or Tally(), stored.get(cid), rates.get(cid, {}))
            for cid in sorted(set(ledger.collectors) | set(stored))
        ]
        return {
            "at": utc_now(),
            "app_id": watched.app_id,
            "events": {name: ledger.events[name] for name in (outcome.EVENTS, outcome.DECODED, outcome.INVALID)},
            "collectors": collectors,
            "lag": [
                {
                    "topic": lag.topic,
                    "partition": lag.partition,
                    "end": lag.end,
                    "committed": lag.committed,
                    "lag": lag.lag,
                }
                for lag in lags
            ],
            "dead_letters": [
                {"collector": cid, "reason": reason, "count": n} for (cid, reason), n in sorted(reasons.items())
            ],
            "missing_topics": missing,
        }

    def _rates(self, ledger: Ledger) -> dict[str, dict[str, float]]:
        """Per collector, per minute over the last minute (or as long as the page has been read)."""
        now = time.monotonic()
        counts = {cid: Tally({k: funnel[k] for k in RATED}) for cid, funnel in ledger.collectors.items()}
        self._history.append((now, counts))
        while len(self._history) > 2 and now - self._history[1][0] >= RATE_WINDOW_S:
            self._history.popleft()
        then, before = self._history[0]
        elapsed = now - then
        if elapsed <= 0:
            return {}
        return {
            cid: {k: round((funnel[k] - before.get(cid, Tally())[k]) * 60.0 / elapsed, 1) for k in RATED}
            for cid, funnel in counts.items()
        }


def _collector(cid: str, funnel: Tally, stored: StoredCollector | None, rates: dict[str, float]) -> dict[str, Any]:
    """One collector as the page shows it."""
    out = [
        {
            "step": name.split(":", 1)[1],
            "stage": "pre" if name.startswith(outcome.FILTERED_PREFIX) else "post",
            "count": n,
        }
        for name, n in sorted(funnel.items())
        if name.startswith((outcome.FILTERED_PREFIX, outcome.POST_FILTERED_PREFIX))
    ]
    for name, label in NOT_JUDGED.items():
        if funnel[name]:
            out.append({"step": label, "stage": "pre", "count": funnel[name]})
    return {
        "id": cid,
        "managed": stored is not None,
        "status": stored.collector.status if stored is not None else "from a worker's file",
        "last_error": stored.last_error if stored is not None else None,
        "seen": funnel[outcome.SEEN],
        "out": out,
        **{name: funnel[name] for name in STEPS},
        "rates": rates,
    }


def visible_to(reading: dict[str, Any], allowed: Callable[[str], bool]) -> dict[str, Any]:
    """The reading with only the collectors (and their dead letters) ``allowed`` accepts by qualified id (the
    dead letters of undecodable events, which belong to no collector, have the id "")."""
    return {
        **reading,
        "collectors": [c for c in reading.get("collectors", []) if allowed(c["id"])],
        "dead_letters": [d for d in reading.get("dead_letters", []) if allowed(d["collector"])],
    }
