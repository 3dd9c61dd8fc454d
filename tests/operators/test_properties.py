"""Whatever contract-valid event comes, no pre-queue operator raises, and none modifies the shared event."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.operators import OPERATORS

from .support import CONCEPT_IDS, CONCEPT_NAMES, candidate, compile_one, events

unit = st.floats(0.0, 1.0)
keys = st.sampled_from([*CONCEPT_IDS, *CONCEPT_NAMES])
condition = st.one_of(
    st.integers(-5, 5),
    st.text(max_size=3),
    st.fixed_dictionaries({"in": st.lists(st.integers(-2, 2) | st.text(max_size=2), max_size=3)}),
    st.fixed_dictionaries({"gte": st.floats(-10, 0)}, optional={"lte": st.floats(0, 10)}),
    st.fixed_dictionaries({"exists": st.booleans()}),
    st.fixed_dictionaries({"ne": st.none() | st.integers(-2, 2)}),
)
relation = st.fixed_dictionaries(
    {"subject": keys, "predicate": st.sampled_from(["synonym", "hypernym", "hyponym"]), "object": keys}
)
PARAMS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "random_sample": st.fixed_dictionaries({"keep_fraction": st.floats(0.01, 1.0)}),
    "metadata_filter": st.fixed_dictionaries(
        {"match": st.dictionaries(st.sampled_from(["camera", "site", "score", "a.b", "tier.a"]), condition, min_size=1)}
    ),
    "max_probability_below": st.fixed_dictionaries({"threshold": unit}),
    "min_probability_above": st.fixed_dictionaries({"threshold": unit}),
    "concept_threshold": st.fixed_dictionaries(
        {"concepts": st.dictionaries(keys | st.just("*"), unit, min_size=1)},
        optional={
            "comparator": st.sampled_from(
                ["GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN", "LESS_THAN_OR_EQUAL", "EQUAL"]
            )
        },
    ),
    "concept_map": st.fixed_dictionaries(
        {"graph": st.lists(relation, min_size=1, max_size=5), "target_concepts": st.lists(keys, min_size=1, max_size=3)}
    ),
    "margin_below": st.fixed_dictionaries({"margin": st.floats(0.01, 1.0)}),
    "entropy_above": st.fixed_dictionaries({"threshold": st.floats(0.0, 4.0)}),
    "stratified_sample": st.fixed_dictionaries(
        {"keep_fraction_by_concept": st.dictionaries(keys, unit, min_size=1)}, optional={"default": unit}
    ),
    "quota": st.fixed_dictionaries(
        {"per_minute": st.integers(1, 3)}, optional={"per_hour": st.integers(1, 5), "per_day": st.integers(1, 9)}
    ),
}


def test_every_pre_queue_operator_is_covered() -> None:
    judges = {name for name, op in OPERATORS.items() if "pre" in op.stages}
    assert set(PARAMS) == {
        name for name in judges if not (OPERATORS[name].calls_model or OPERATORS[name].needs_embedding)
    }


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from(sorted(PARAMS)).flatmap(lambda name: st.tuples(st.just(name), PARAMS[name])), events())
def test_no_exception_and_no_mutation(operator: tuple[str, dict[str, Any]], evt: dict[str, Any]) -> None:
    name, params = operator
    decide = compile_one(name, **params)
    before = copy.deepcopy(evt)
    state: dict[str, Any] = {}
    seen = candidate(evt, state)
    assert decide(seen) in (True, False)
    assert decide(candidate(evt, state)) in (True, False)
    assert evt == before
    json.dumps(state)
    assert all(isinstance(c, dict) for c in seen.concepts)


@settings(max_examples=300, deadline=None)
@given(events())
def test_every_pre_queue_operator_in_a_row(evt: dict[str, Any]) -> None:
    """A workflow of every pre-queue operator, each narrowing what the next sees."""
    before = copy.deepcopy(evt)
    seen = candidate(evt)
    for decide in (
        compile_one("concept_threshold", concepts={"*": 0.1}),
        compile_one(
            "concept_map",
            graph=[{"subject": "dog", "predicate": "synonym", "object": "x"}],
            target_concepts=["x", "ai_cat"],
        ),
        compile_one("max_probability_below", threshold=1.0),
        compile_one("min_probability_above", threshold=0.0),
        compile_one("margin_below", margin=1.0),
        compile_one("entropy_above", threshold=0.0),
        compile_one("stratified_sample", keep_fraction_by_concept={"x": 1.0}),
        compile_one("quota", per_day=1000),
    ):
        if not decide(seen):
            break
    assert evt == before
