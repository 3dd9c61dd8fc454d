"""random_sample and stratified_sample: deterministic decisions, rates within statistical bounds."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.operators.random_sample import sample_point
from streams.core.workflows import WorkflowError

from .support import candidate, compile_one, concept, event, node_error, region

N = 4000


def bound(fraction: float, n: int = N) -> float:
    """Five standard deviations of a binomial rate: a false failure is practically impossible."""
    return 5 * math.sqrt(fraction * (1 - fraction) / n) + 1e-9


@settings(max_examples=15, deadline=None)
@given(st.floats(0.01, 1.0), st.text(min_size=1, max_size=8))
def test_random_sample_rate(fraction: float, collector: str) -> None:
    decide = compile_one("random_sample", keep_fraction=fraction)
    base = event([concept("a", 0.5)])
    kept = sum(decide(candidate({**base, "id": f"evt-{i}"}, collector=collector)) for i in range(N))
    assert abs(kept / N - fraction) <= bound(fraction)


@settings(max_examples=10, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_stratified_rates_per_top_concept(dog: float, cat: float, default: float) -> None:
    decide = compile_one("stratified_sample", keep_fraction_by_concept={"dog": dog, "ai_cat": cat}, default=default)
    cases = {
        dog: [concept("ai_dog", 0.9, "dog"), concept("ai_cat", 0.1, "cat")],
        cat: [concept("ai_dog", 0.2, "dog"), concept("ai_cat", 0.7, "cat")],
        default: [concept("ai_car", 0.6, "car"), concept("ai_cat", 0.3, "cat")],
    }
    for fraction, concepts in cases.items():
        base = event(concepts)
        kept = sum(decide(candidate({**base, "id": f"evt-{i}"})) for i in range(N // 4))
        assert abs(kept / (N // 4) - fraction) <= bound(fraction, N // 4)


def test_stratified_is_the_random_sample_decision_of_the_top_concepts_fraction() -> None:
    decide = compile_one("stratified_sample", keep_fraction_by_concept={"dog": 0.3}, default=0.0)
    for i in range(500):
        evt = event([concept("ai_cat", 0.1), concept("ai_dog", 0.8, "dog")], event_id=f"e{i}")
        assert decide(candidate(evt)) == (sample_point("c1", f"e{i}") < 0.3)
        assert decide(candidate(evt)) == decide(candidate(evt))  # redelivery: same decision


def test_stratified_edges() -> None:
    keep_dogs = compile_one("stratified_sample", keep_fraction_by_concept={"dog": 1.0, "cat": 0.0}, default=0.0)
    assert keep_dogs(candidate(event([concept("ai_dog", 0.5, "dog"), concept("ai_cat", 0.5, "cat")])))  # tie: first
    assert not keep_dogs(candidate(event([concept("ai_cat", 0.5, "cat"), concept("ai_dog", 0.5, "dog")])))
    assert not keep_dogs(candidate(event([])))  # no concepts: the default fraction (0 here)
    assert keep_dogs(candidate(event(regions=[region(concept("ai_dog", 0.4, "dog"))])))  # region concepts
    keep_rest = compile_one("stratified_sample", keep_fraction_by_concept={"dog": 0.0})
    assert keep_rest(candidate(event([])))  # default defaults to 1.0
    assert keep_rest(candidate(event([concept("ai_car", 0.9)])))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "keep_fraction_by_concept"),
        ({"keep_fraction_by_concept": {}}, "keep_fraction_by_concept"),
        ({"keep_fraction_by_concept": {"dog": 2}}, "keep_fraction_by_concept.dog"),
        ({"keep_fraction_by_concept": {"dog": 0.5}, "default": -0.1}, "default"),
    ],
)
def test_stratified_bad_parameters(params: dict[str, object], field: str) -> None:
    with pytest.raises(WorkflowError, match=node_error("stratified_sample") + f"field `{field}`"):
        compile_one("stratified_sample", **params)


def test_random_sample_bad_parameters() -> None:
    with pytest.raises(WorkflowError, match=node_error("random_sample") + "field `keep_fraction`"):
        compile_one("random_sample", keep_fraction=0)
