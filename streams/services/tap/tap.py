"""The tap's capture: a PostModelOutputs call the caller already has its answer to becomes prediction events.

Nothing here makes the caller wait: the caller's key is looked up (MyScopes, cached) while the upstream
answers, the events are built after the answer went out, and they are handed to a bounded publisher. A
call whose key is not known yet waits for its lookup in the background; at most ``max_waiting`` calls do,
past that their events are dropped and counted with the publisher's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.kafka.bounded_publisher import BoundedPublisher
from streams.services.tap.callers import Callers
from streams.services.tap.events import prediction_events, succeeded

log = logging.getLogger(__name__)


@dataclass
class TapStats:
    """The calls the tap passed on, and what became of them."""

    calls: int = 0
    """PostModelOutputs calls the upstream answered with success (SUCCESS or MIXED_STATUS)."""
    failed_calls: int = 0
    """Calls the upstream failed or refused, or that could not reach it: nothing published."""
    unreadable_calls: int = 0
    """Calls whose request or answer could not be decoded (passed on, nothing published)."""
    events: int = 0
    """Prediction events built (and offered to the publisher)."""
    skipped_outputs: int = 0
    """Outputs that gave no event: failed, or without a model or a matching input."""

    def as_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass
class Tap:
    """Turns answered calls into events on the publisher's topic."""

    publisher: BoundedPublisher
    callers: Callers
    max_waiting: int = 1_000
    stats: TapStats = field(default_factory=TapStats)
    _waiting: set[asyncio.Task[None]] = field(default_factory=set)

    def seen(self, key: str) -> None:
        """A call with this key arrived: start its caller lookup if it is not cached (never waits)."""
        self.callers.prefetch(key)

    def failed(self) -> None:
        """The upstream failed the call or could not be reached: nothing is published."""
        self.stats.failed_calls += 1

    def unreadable(self, reason: str) -> None:
        """The call could not be decoded: it was passed on, nothing is published."""
        self.stats.unreadable_calls += 1
        log.warning("a PostModelOutputs call was passed on but not tapped: %s", reason)

    def answered(self, key: str, request: Any, answer: Any) -> None:
        """The upstream answered ``request`` with ``answer`` (both decoded): publish its predictions, if it
        succeeded."""
        if not succeeded(answer):
            self.failed()
            return
        self.stats.calls += 1
        hit, user = self.callers.cached(key) if key else (True, None)
        if hit:
            self._publish(request, answer, user)
            return
        if len(self._waiting) >= self.max_waiting:
            outputs = answer.get("outputs") if isinstance(answer, dict) else None
            self.publisher.drop(len(outputs) if isinstance(outputs, list) else 1)
            return
        task = asyncio.get_running_loop().create_task(self._publish_when_known(key, request, answer))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def _publish_when_known(self, key: str, request: Any, answer: Any) -> None:
        self._publish(request, answer, await self.callers.user_id(key))

    def _publish(self, request: Any, answer: Any, caller_user_id: str | None) -> None:
        seen_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        events, skipped = prediction_events(request, answer, caller_user_id=caller_user_id, seen_at=seen_at)
        self.stats.events += len(events)
        self.stats.skipped_outputs += skipped
        for event in events:
            self.publisher.offer(event["id"].encode(), orjson.dumps(event))

    async def close(self) -> None:
        """Let the calls waiting for their caller finish (up to 5 s), then stop the publisher."""
        if self._waiting:
            await asyncio.wait(set(self._waiting), timeout=5.0)
        await self.publisher.stop()

    def as_json(self) -> dict[str, Any]:
        """Counters for ``GET /_tap/stats``."""
        return {
            **self.stats.as_json(),
            "publisher": self.publisher.stats.as_json(),
            "caller_lookups": self.callers.lookups,
            "caller_lookup_failures": self.callers.failures,
        }
