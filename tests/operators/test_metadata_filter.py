"""metadata_filter: equality, conditions, nested paths, missing keys, and load-time errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.workflows import WorkflowError

from .support import candidate, compile_one, event, node_error

META = {
    "camera": {"site": "north-gate", "id": 7, "tags": ["a"]},
    "score": 0.4,
    "tier": "gold",
    "flag": True,
    "taken": "2026-11-27T10:00:00Z",
    "none": None,
}


def matches(match: dict[str, Any], metadata: dict[str, Any] | None = META) -> bool:
    return compile_one("metadata_filter", match=match)(candidate(event([], metadata=metadata)))


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"tier": "gold"}, True),
        ({"tier": "silver"}, False),
        ({"camera.site": "north-gate", "camera.id": 7}, True),
        ({"camera.site": "north-gate", "camera.id": 8}, False),  # every entry must match
        ({"camera.id": 7.0}, True),
        ({"flag": 1}, False),  # true is not 1
        ({"camera.id": True}, False),
        ({"flag": True}, True),
        ({"camera.tags": ["a"]}, True),
        ({"camera": {"site": "north-gate", "id": 7, "tags": ["a"]}}, True),  # a plain mapping: equality
        ({"camera.tags.0": "a"}, False),  # paths do not index lists
        ({"tier": {"in": ["gold", "silver"]}}, True),
        ({"tier": {"in": []}}, False),
        ({"score": {"gte": 0.4}}, True),
        ({"score": {"gte": 0.2, "lte": 0.3}}, False),
        ({"score": {"lte": 0.4}}, True),
        ({"tier": {"gte": 0}}, False),  # a string against number bounds
        ({"taken": {"gte": "2026-11-27", "lte": "2026-11-28"}}, True),
        ({"flag": {"gte": 0}}, False),  # booleans are not numbers
        ({"none": {"exists": True}}, True),  # present with null
        ({"missing": {"exists": True}}, False),
        ({"missing": {"exists": False}}, True),
        ({"camera.site.deeper": {"exists": False}}, True),
        ({"tier": {"exists": False}}, False),
        ({"tier": {"ne": "silver"}}, True),
        ({"tier": {"ne": "gold"}}, False),
        ({"missing": {"ne": "gold"}}, False),  # a missing path matches only exists: false
        ({"missing": None}, False),
        ({"none": None}, True),
        ({"score": {"exists": True, "gte": 0.1, "ne": 0.5, "in": [0.4, 1]}}, True),
    ],
)
def test_match(match: dict[str, Any], expected: bool) -> None:
    assert matches(match) is expected


def test_empty_or_absent_metadata() -> None:
    assert not matches({"tier": "gold"}, {})
    assert not matches({"tier": "gold"}, None)
    assert matches({"tier": {"exists": False}}, None)


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ({}, "Dictionary should have at least 1 item"),
        ({"a..b": 1}, "none of them empty"),
        ({"a": {"in": "gold"}}, "`in` takes a list"),
        ({"a": {"exists": "yes"}}, "`exists` takes true or false"),
        ({"a": {"exists": False, "ne": 1}}, "cannot be combined"),
        ({"a": {"gte": 1, "lte": "z"}}, "of one kind"),
        ({"a": {"gte": True}}, "of one kind"),
        ({"a": {"gte": 5, "lte": 1}}, "nothing can match"),
        ({"a": {"gte": 1, "site": "x"}}, r"\['site'\] mixed with conditions"),
    ],
)
def test_bad_match_fails_at_load(match: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkflowError, match=node_error("metadata_filter") + f"field `match`.*{message}"):
        compile_one("metadata_filter", match=match)


def test_unknown_parameter() -> None:
    with pytest.raises(WorkflowError, match=node_error("metadata_filter") + "field `where`: Extra inputs"):
        compile_one("metadata_filter", match={"a": 1}, where={"a": 1})


@settings(max_examples=300)
@given(st.floats(-10, 10), st.floats(-10, 10), st.floats(-10, 10))
def test_bounds_agree_with_direct_comparison(value: float, low: float, high: float) -> None:
    low, high = min(low, high), max(low, high)
    assert matches({"x.y": {"gte": low, "lte": high}}, {"x": {"y": value}}) == (low <= value <= high)
