"""Fuzzing with hypothesis: whatever bytes arrive, the decoder answers with an event or a DecodeError, and
no operator of any stage raises on an event the decoder let through (over 10,000 generated events)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.collectors import CollectorsDocument
from streams.core.decoding import DecodeError, decode_event
from streams.core.ledger import Ledger
from streams.core.routing import build_index
from streams.core.selection import after_queue_passes, select

MODEL = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "m"}
DEST = {"base_url": "http://127.0.0.1:9", "user_id": "u", "app_id": "a", "key": "fuzz-key-0000"}
PIXEL = base64.b64encode(
    bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
    + bytes.fromhex("1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
).decode()

NODES: dict[str, dict[str, Any]] = {
    "metadata_filter": {"match": {"camera": {"in": ["a", "b"]}, "deep.key": {"exists": True}, "n": {"gte": 0}}},
    "max_probability_below": {"threshold": 0.9},
    "min_probability_above": {"threshold": 0.1},
    "concept_threshold": {"concepts": {"*": 0.2, "dog": 0.5}, "comparator": "GREATER_THAN"},
    "concept_map": {
        "graph": [
            {"subject": "dog", "predicate": "synonym", "object": "pet"},
            {"subject": "c0", "predicate": "hyponym", "object": "pet"},
        ],
        "target_concepts": ["pet"],
    },
    "margin_below": {"margin": 0.5},
    "entropy_above": {"threshold": 0.1},
    "stratified_sample": {"keep_fraction_by_concept": {"dog": 0.5}, "default": 0.9},
    "random_sample": {"keep_fraction": 0.7},
    "quota": {"per_minute": 1000, "per_hour": 5000},
}
POST_NODES: dict[str, dict[str, Any]] = {
    "text_check": {"min_length": 1, "max_length": 500, "pattern": "a|e"},
    "near_duplicate": {"max_distance": 2},
    "image_check": {"min_width": 1, "min_height": 1, "not_blank": False, "timeout_s": 0.2, "max_bytes": 100_000},
}


def _index() -> Any:
    workflows = [{"id": f"w-{name}", "nodes": [{"operator": name, **params}]} for name, params in NODES.items()]
    workflows += [{"id": f"p-{name}", "nodes": [{"operator": name, **params}]} for name, params in POST_NODES.items()]
    collectors = [
        {"id": f"c-{name}", "source": MODEL, "destination": DEST, "pre_queue_workflow_id": f"w-{name}"}
        for name in NODES
    ]
    collectors += [
        {"id": f"c-{name}", "source": MODEL, "destination": DEST, "post_queue_workflow_id": f"p-{name}"}
        for name in POST_NODES
    ]
    collectors.append(
        {
            "id": "c-all",
            "source": MODEL,
            "destination": DEST,
            "pre_queue_workflow_id": "w-all",
            "collect_outputs": True,
        }
    )
    workflows.append({"id": "w-all", "nodes": [{"operator": n, **p} for n, p in NODES.items()]})
    document = CollectorsDocument.model_validate({"collectors": collectors, "workflows": workflows})
    return build_index(document, {c.id: "fuzz-key-0000" for c in document.collectors})


INDEX = _index()

json_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8)
json_value = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
concept_value = st.floats(-0.5, 1.5) | st.floats(0, 1) | st.integers(-1, 2) | st.none() | st.text(max_size=3)
concept = st.fixed_dictionaries(
    {"id": st.sampled_from(["dog", "cat", "c0", "", "pet"]) | st.text(max_size=4), "value": concept_value},
    optional={"name": st.sampled_from(["dog", "cat"]) | st.none() | st.integers()},
)
media = st.one_of(
    st.fixed_dictionaries({"image": st.fixed_dictionaries({"url": st.just("http://127.0.0.1:9/x.jpg")})}),
    st.fixed_dictionaries({"image": st.fixed_dictionaries({"base64": st.just(PIXEL) | st.text(max_size=12)})}),
    st.fixed_dictionaries({"text": st.fixed_dictionaries({"raw": st.text(max_size=40)})}),
    st.fixed_dictionaries({"text": st.fixed_dictionaries({"url": st.just("http://127.0.0.1:9/t.txt")})}),
    st.fixed_dictionaries({}),
)
metadata = st.dictionaries(st.sampled_from(["camera", "n", "deep", "x"]), json_value, max_size=4)
event = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=10),
        "output": st.fixed_dictionaries(
            {
                "model": st.just({"id": "m", "user_id": "clarifai", "app_id": "main"}),
                "input": st.fixed_dictionaries(
                    {"data": media.flatmap(lambda m: st.just(m) | metadata.map(lambda md: {**m, "metadata": md}))}
                ),
                "data": st.fixed_dictionaries(
                    {},
                    optional={
                        "concepts": st.lists(concept, max_size=6),
                        "regions": st.lists(
                            st.fixed_dictionaries(
                                {"data": st.fixed_dictionaries({"concepts": st.lists(concept, max_size=3)})}
                            ),
                            max_size=3,
                        ),
                    },
                ),
            }
        ),
    },
    optional={
        "created_at": st.sampled_from(["2026-11-27T10:00:00Z", "bad", "2026-11-27T10:00:00+02:00"]),
        "caller": json_value,
    },
)


def _process(raw: bytes) -> None:
    try:
        decoded = decode_event(raw)
    except DecodeError as exc:
        assert exc.reason in {"invalid_json", "not_utf8", "contract", "too_large", "too_deep"}
        return
    ledger = Ledger()
    queued, rejected = select(decoded, INDEX, ledger)
    assert not rejected, f"an operator raised: {rejected}"
    state: dict[str, Any] = {}
    for collector, record in queued:
        asyncio.run(after_queue_passes(collector, record, ledger, state))


FUZZ = settings(max_examples=4000, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@FUZZ
@given(event)
def test_structured_events(document: dict[str, Any]) -> None:
    _process(json.dumps(document).encode())


@FUZZ
@given(event, st.integers(0, 400), st.binary(max_size=4))
def test_truncated_and_corrupted_events(document: dict[str, Any], cut: int, junk: bytes) -> None:
    raw = json.dumps(document).encode()
    _process(raw[:cut] + junk)


@settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.binary(max_size=300) | json_value.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes(raw: bytes) -> None:
    _process(raw)
