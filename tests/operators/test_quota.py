"""quota: limits per event-time window, bounded state, refunds, fallbacks for events without a time."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.operators.quota import QuotaParams, event_time, refund
from streams.core.workflows import WorkflowError

from .support import candidate, compile_one, concept, event, node_error

START = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def at(moment: datetime, i: int = 0) -> dict[str, Any]:
    return event([concept("a", 0.5)], event_id=f"e{i}", created_at=moment.isoformat().replace("+00:00", "Z"))


def test_limit_per_minute_then_next_window() -> None:
    decide = compile_one("quota", per_minute=2)
    state: dict[str, Any] = {}
    results = [decide(candidate(at(START + timedelta(seconds=s), s), state)) for s in (0, 10, 20, 59, 60, 61, 62)]
    assert results == [True, True, False, False, True, True, False]
    assert state == {"quota|c1|minute": {"2026-11-27T10:00": 2, "2026-11-27T10:01": 2}}
    json.dumps(state)  # a Faust table holds it: JSON-serialisable


def test_every_limit_must_have_room_and_a_stopped_event_counts_nowhere() -> None:
    decide = compile_one("quota", per_minute=5, per_hour=3)
    state: dict[str, Any] = {}
    assert [decide(candidate(at(START + timedelta(minutes=m)), state)) for m in range(5)] == [True] * 3 + [False] * 2
    assert state["quota|c1|minute"] == {"2026-11-27T10:01": 1, "2026-11-27T10:02": 1}  # the last two windows
    assert state["quota|c1|hour"] == {"2026-11-27T10": 3}


def test_collectors_have_separate_counts() -> None:
    decide = compile_one("quota", per_day=1)
    state: dict[str, Any] = {}
    assert decide(candidate(at(START), state, collector="a"))
    assert decide(candidate(at(START), state, collector="b"))
    assert not decide(candidate(at(START), state, collector="a"))


def test_state_stays_bounded_and_late_events_stop() -> None:
    decide = compile_one("quota", per_minute=1)
    state: dict[str, Any] = {}
    for m in range(100):
        decide(candidate(at(START + timedelta(minutes=m)), state))
    assert list(state["quota|c1|minute"]) == ["2026-11-27T11:38", "2026-11-27T11:39"]
    assert not decide(candidate(at(START), state))  # its window's count is gone: more than one window late
    assert list(state["quota|c1|minute"]) == ["2026-11-27T11:38", "2026-11-27T11:39"]


def test_time_fallbacks() -> None:
    assert event_time({"created_at": "2026-11-27T12:00:00+02:00"}) == START
    assert event_time({"created_at": "2026-11-27T10:00:00"}) == START  # no offset: UTC
    assert event_time({"created_at": "garbage", "_kafka_timestamp_ms": START.timestamp() * 1000}) == START
    assert event_time({"_kafka_timestamp_ms": int(START.timestamp() * 1000)}) == START
    assert event_time({"_kafka_timestamp_ms": True}) is None
    assert event_time({"_kafka_timestamp_ms": 10**30}) is None
    assert event_time({}) is None
    decide = compile_one("quota", per_hour=1)
    state: dict[str, Any] = {}
    assert decide(candidate(event([]), state))
    assert not decide(candidate(event([], event_id="e2"), state))
    assert state == {"quota|c1|hour": {"unknown": 1}}


def test_refund_gives_back_one_unit_per_window() -> None:
    params = QuotaParams(per_minute=1, per_hour=10)
    decide = compile_one("quota", per_minute=1, per_hour=10)
    state: dict[str, Any] = {}
    first = at(START)
    assert decide(candidate(first, state))
    assert not decide(candidate(at(START, 1), state))
    refund(state, "c1", params, first)
    assert state == {"quota|c1|minute": {"2026-11-27T10:00": 0}, "quota|c1|hour": {"2026-11-27T10": 0}}
    refund(state, "c1", params, first)  # never below zero
    assert state["quota|c1|minute"]["2026-11-27T10:00"] == 0
    assert decide(candidate(at(START, 2), state))
    refund({}, "c1", params, first)  # nothing counted: nothing to give back


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give at least one of `per_minute`, `per_hour`, `per_day`"),
        ({"per_minute": 0}, "field `per_minute`"),
        ({"per_hour": 1.5}, "field `per_hour`"),
        ({"per_week": 3}, "field `per_week`"),
    ],
)
def test_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(WorkflowError, match=node_error("quota") + f".*{message}"):
        compile_one("quota", **params)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 8),
    st.lists(st.tuples(st.integers(0, 600), st.booleans()), max_size=60),
)
def test_never_exceeds_a_limit_per_window(per_minute: int, per_hour: int, arrivals: list[tuple[int, bool]]) -> None:
    """Events arrive in any order (seconds into a 10-minute span); some are refunded right away."""
    params = QuotaParams(per_minute=per_minute, per_hour=per_hour)
    decide = compile_one("quota", per_minute=per_minute, per_hour=per_hour)
    state: dict[str, Any] = {}
    minutes: Counter[str] = Counter()
    hours: Counter[str] = Counter()
    for i, (second, refunded) in enumerate(arrivals):
        moment = START + timedelta(minutes=50, seconds=second)
        evt = at(moment, i)
        if decide(candidate(evt, state)):
            if refunded:
                refund(state, "c1", params, evt)
                continue
            minutes[moment.strftime("%H:%M")] += 1
            hours[moment.strftime("%H")] += 1
    assert all(count <= per_minute for count in minutes.values())
    assert all(count <= per_hour for count in hours.values())
    assert all(len(windows) <= 2 for windows in state.values())
