"""``quota``: cap how many events a collector keeps per minute, hour and/or day of event time.

Windows are calendar windows in UTC of the event's time: ``created_at`` (RFC 3339; a time without
offset is UTC), else ``_kafka_timestamp_ms`` (the record's Kafka timestamp, set by the worker), else
the window ``unknown``, one per granularity, which never rolls over (once full, events without a time
stop). The event passes when every configured window is below its limit, and then counts once in each.

State: ``state["quota|<collector id>|<minute|hour|day>"]`` is ``{window id: count}`` (window ids like
``2026-11-27T10:01``, ``2026-11-27T10``, ``2026-11-27``), holding only the two latest windows (and
``unknown``), so it stays bounded. An event whose window is older than both kept windows (more than one
window late) stops: its count is gone. :func:`refund` gives one unit back (e.g. when the destination
answers that the input is a duplicate).

Example node::

    {operator: quota, per_minute: 10, per_day: 2000}
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.core.operators.base import Candidate, Decision, Operator

Granularity = Literal["minute", "hour", "day"]
UNKNOWN = "unknown"
KEPT_WINDOWS = 2
_WIDTHS: dict[Granularity, int] = {"minute": 16, "hour": 13, "day": 10}
"""Window ids are prefixes of the UTC ISO time (``2026-11-27T10:01``), so they sort chronologically."""


class QuotaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_minute: int | None = Field(default=None, ge=1)
    per_hour: int | None = Field(default=None, ge=1)
    per_day: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_limit(self) -> QuotaParams:
        if not self.limits():
            raise ValueError("give at least one of `per_minute`, `per_hour`, `per_day`")
        return self

    def limits(self) -> dict[Granularity, int]:
        given: dict[Granularity, int | None] = {"minute": self.per_minute, "hour": self.per_hour, "day": self.per_day}
        return {granularity: limit for granularity, limit in given.items() if limit is not None}


def event_time(event: dict[str, Any]) -> datetime | None:
    """The event's time in UTC: ``created_at``, else ``_kafka_timestamp_ms``, else None."""
    created = event.get("created_at")
    if isinstance(created, str):
        try:
            created = datetime.fromisoformat(created)
        except ValueError:
            created = None
    stamp = event.get("_kafka_timestamp_ms")
    try:
        if isinstance(created, datetime):
            return created.astimezone(UTC) if created.tzinfo else created.replace(tzinfo=UTC)
        if isinstance(stamp, int | float) and not isinstance(stamp, bool):
            return datetime.fromtimestamp(stamp / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        pass
    return None


def windows(params: QuotaParams, collector_id: str, event: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(state key, window id, limit) of each configured granularity for this event."""
    moment = event_time(event)
    stamp = moment.replace(tzinfo=None).isoformat() if moment else ""
    for granularity, limit in params.limits().items():
        window = stamp[: _WIDTHS[granularity]] if moment else UNKNOWN
        yield f"quota|{collector_id}|{granularity}", window, limit


def _counts(state: MutableMapping[str, Any], key: str) -> dict[str, int]:
    counts = state.get(key)
    return dict(counts) if isinstance(counts, dict) else {}


def _admits(counts: dict[str, int], window: str, limit: int) -> bool:
    if window in counts:
        return counts[window] < limit
    dated = [w for w in counts if w != UNKNOWN]
    return window == UNKNOWN or len(dated) < KEPT_WINDOWS or window > min(dated)


def _pruned(counts: dict[str, int]) -> dict[str, int]:
    dated = sorted(w for w in counts if w != UNKNOWN)[-KEPT_WINDOWS:]
    return {w: counts[w] for w in counts if w == UNKNOWN or w in dated}


def take(state: MutableMapping[str, Any], collector_id: str, params: QuotaParams, event: dict[str, Any]) -> bool:
    """Count the event in its windows if every one has room; False (and no change) otherwise."""
    slots = [(key, window, limit, _counts(state, key)) for key, window, limit in windows(params, collector_id, event)]
    if not all(_admits(counts, window, limit) for _, window, limit, counts in slots):
        return False
    for key, window, _, counts in slots:
        counts[window] = counts.get(window, 0) + 1
        state[key] = _pruned(counts)
    return True


def refund(state: MutableMapping[str, Any], collector_id: str, params: QuotaParams, event: dict[str, Any]) -> None:
    """Give back the unit this event took in each of its windows still kept (never below 0)."""
    for key, window, _ in windows(params, collector_id, event):
        counts = _counts(state, key)
        if counts.get(window, 0) > 0:
            counts[window] -= 1
            state[key] = counts


def build(params: QuotaParams) -> Decision:
    def quota(candidate: Candidate) -> bool:
        return take(candidate.state, candidate.collector_id, params, candidate.event)

    return quota


def _refund_candidate(params: QuotaParams, candidate: Candidate) -> None:
    refund(candidate.state, candidate.collector_id, params, candidate.event)


OPERATOR = Operator(
    name="quota", stages=("pre",), params=QuotaParams, build=build, stateful=True, refund=_refund_candidate
)
