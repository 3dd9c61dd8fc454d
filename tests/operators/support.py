"""Helpers: events as the decoder hands them over, nodes compiled the way the worker compiles them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import orjson
from hypothesis import strategies as st

from schemas.collectors import Node
from streams.core.decoding import decode_event
from streams.core.operators import OPERATORS, AsyncDecision, Candidate, Decision
from streams.core.workflows import compile_nodes

COLLECTOR = "c1"
WORKFLOW = "wf"


def node_error(operator: str) -> str:
    """The start of the message a bad node of this operator fails the load with (a regex)."""
    return rf"collector '{COLLECTOR}', workflow '{WORKFLOW}', node 0 \('{operator}'\): "


def compile_step(operator: str, **parameters: Any) -> Decision | AsyncDecision:
    """One node compiled through :func:`streams.core.workflows.compile_nodes`, in the operator's stage."""
    stage = OPERATORS[operator].stages[0]
    node = Node.model_validate({"operator": operator, **parameters})
    (step,) = compile_nodes([node], stage=stage, collector_id=COLLECTOR, workflow_id=WORKFLOW)
    return step.decide


def compile_one(operator: str, **parameters: Any) -> Decision:
    assert not OPERATORS[operator].is_async
    return cast(Decision, compile_step(operator, **parameters))


def compile_async(operator: str, **parameters: Any) -> AsyncDecision:
    assert OPERATORS[operator].is_async
    return cast(AsyncDecision, compile_step(operator, **parameters))


def concept(cid: str, value: float, name: str | None = None) -> dict[str, Any]:
    return {"id": cid, "value": value} if name is None else {"id": cid, "name": name, "value": value}


def event(
    concepts: list[dict[str, Any]] | None = None,
    *,
    regions: list[dict[str, Any]] | None = None,
    data: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    event_id: str = "evt-1",
    **extra: Any,
) -> dict[str, Any]:
    """A contract-valid event, decoded by the real decoder."""
    input_data = dict(data or {"image": {"url": "https://example.com/1.jpg"}})
    if metadata is not None:
        input_data["metadata"] = metadata
    output_data: dict[str, Any] = {}
    if concepts is not None:
        output_data["concepts"] = concepts
    if regions is not None:
        output_data["regions"] = regions
    raw = {
        "id": event_id,
        **extra,
        "output": {
            "model": {"id": "general-image-recognition", "user_id": "clarifai", "app_id": "main"},
            "input": {"id": "in-1", "data": input_data},
            "data": output_data,
        },
    }
    return decode_event(orjson.dumps(raw))


def region(*concepts: dict[str, Any], rid: str = "r1") -> dict[str, Any]:
    return {"id": rid, "region_info": {"bounding_box": {"top_row": 0.1}}, "data": {"concepts": list(concepts)}}


def candidate(evt: dict[str, Any], state: dict[str, Any] | None = None, collector: str = COLLECTOR) -> Candidate:
    seen = Candidate.of(collector, evt)
    # Set here, not through ``Candidate.of``: its ``state or {}`` swaps an empty state for a fresh dict.
    seen.state = state if state is not None else {}
    return seen


# Hypothesis strategies for contract-valid events -------------------------------------------------------

CONCEPT_IDS = ["ai_dog", "ai_cat", "ai_car", "ai_puppy", "x"]
CONCEPT_NAMES = ["dog", "cat", "car", "puppy"]

values = st.floats(min_value=0.0, max_value=1.0, allow_nan=False) | st.sampled_from([0, 1, 0.5])
concepts_st = st.lists(
    st.fixed_dictionaries(
        {"id": st.sampled_from([*CONCEPT_IDS, "ü", "*"]), "value": values},
        optional={
            "name": st.sampled_from([*CONCEPT_NAMES, "", "ai_dog"]) | st.none(),
            "extra": st.integers(-(2**53), 2**53),
        },
    ),
    max_size=6,
)
regions_st = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.sampled_from(["r1", "r2", ""]) | st.none(),
            "region_info": st.none() | st.just({"bounding_box": {"top_row": 0.2}}),
            "data": st.fixed_dictionaries({}, optional={"concepts": concepts_st}),
        },
    ),
    max_size=3,
)
json_scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars | st.sampled_from(["", "gold", "north-gate", "2026-11-27"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abc"), children, max_size=3),
    max_leaves=5,
)
metadata_st = st.dictionaries(st.sampled_from(["camera", "site", "score", "tier", "a"]), json_values, max_size=4)
input_data_st = st.fixed_dictionaries(
    {"image": st.sampled_from([{"url": "https://e.com/1.jpg"}, {"base64": "aGVsbG8="}])},
    optional={"metadata": metadata_st},
) | st.fixed_dictionaries(
    {"text": st.sampled_from([{"raw": "hello there"}, {"raw": ""}, {"url": "https://e.com/t"}])},
    optional={"metadata": metadata_st},
)
created_at_st = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda moment: moment.isoformat() + "Z"
)


output_data_st = st.fixed_dictionaries({}, optional={"concepts": concepts_st, "regions": regions_st})
times_st = st.fixed_dictionaries(
    {}, optional={"created_at": created_at_st, "_kafka_timestamp_ms": st.integers(0, 2**42)}
)
event_ids = st.sampled_from(["e1", "e2", "evt-000001", "ü", "0"]) | st.text(min_size=1, max_size=8)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Arbitrary contract-valid events, passed through the decoder."""
    raw = {
        "id": draw(event_ids),
        **draw(times_st),
        "output": {
            "model": {"id": "m", "user_id": "u", "app_id": "a"},
            "input": {"data": draw(input_data_st)},
            "data": draw(output_data_st),
        },
    }
    return decode_event(orjson.dumps(raw))
