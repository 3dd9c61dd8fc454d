"""max_probability_below, min_probability_above, margin_below, entropy_above: rules, edges, properties."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.operators import Candidate
from streams.core.operators.entropy_above import entropy_bits
from streams.core.workflows import WorkflowError

from .support import candidate, compile_one, concept, event, node_error, region

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def judge(operator: str, concepts: list[dict[str, object]] | None = None, **params: object) -> bool:
    return compile_one(operator, **params)(candidate(event(concepts)))


@pytest.mark.parametrize("operator", ["max_probability_below", "min_probability_above", "entropy_above"])
def test_no_concepts_stop(operator: str) -> None:
    assert not judge(operator, None, threshold=0.5 if operator != "entropy_above" else 0.0)
    assert not judge(operator, [], threshold=0.5 if operator != "entropy_above" else 0.0)


def test_margin_no_concepts_stops() -> None:
    assert not judge("margin_below", [], margin=0.5)


def test_max_probability_below() -> None:
    assert judge("max_probability_below", [concept("a", 0.3), concept("b", 0.59)], threshold=0.6)
    assert not judge("max_probability_below", [concept("a", 0.3), concept("b", 0.6)], threshold=0.6)  # strict
    assert not judge("max_probability_below", [concept("a", 0.9)], threshold=0.6)


def test_min_probability_above() -> None:
    assert judge("min_probability_above", [concept("a", 0.96), concept("b", 0.1)], threshold=0.95)
    assert not judge("min_probability_above", [concept("a", 0.95)], threshold=0.95)  # strict


def test_region_concepts_count_only_without_top_level_ones() -> None:
    decide = compile_one("min_probability_above", threshold=0.8)
    regions = [region(concept("a", 0.2)), region(concept("b", 0.9), rid="r2")]
    assert decide(candidate(event(regions=regions)))
    assert not decide(candidate(event([concept("c", 0.5)], regions=regions)))
    assert not decide(candidate(event(regions=[{"id": "r"}, region()])))  # regions without concepts


def test_margin_below() -> None:
    assert judge("margin_below", [concept("a", 0.48), concept("b", 0.45), concept("c", 0.07)], margin=0.1)
    assert not judge("margin_below", [concept("a", 0.8), concept("b", 0.1)], margin=0.1)
    assert judge("margin_below", [concept("a", 0.5), concept("b", 0.5)], margin=0.01)  # tie: margin 0
    assert judge("margin_below", [concept("a", 0.05)], margin=0.1)  # one concept: second counts as 0
    assert not judge("margin_below", [concept("a", 0.5)], margin=0.1)


def test_entropy_above() -> None:
    two = [concept("a", 0.4), concept("b", 0.4)]
    assert judge("entropy_above", two, threshold=1.0)  # exactly 1 bit, within tolerance
    assert not judge("entropy_above", two, threshold=1.01)
    assert judge("entropy_above", [concept("a", 0.9)], threshold=0.0)  # one concept: 0 bits
    assert not judge("entropy_above", [concept("a", 0.9)], threshold=0.1)
    assert not judge("entropy_above", [concept("a", 0.0), concept("b", 0.0)], threshold=0.0)  # no distribution
    assert entropy_bits([0.25] * 8) == pytest.approx(3.0)


def test_odd_values_are_ignored_when_called_directly() -> None:
    decide = compile_one("max_probability_below", threshold=0.5)
    concepts: list[Any] = [
        {"id": "a", "value": math.nan},
        {"id": "b", "value": "0.9"},
        {"id": "c"},
        {"id": "d", "value": True},
        "junk",
        {"id": "e", "value": 0.2},
    ]
    odd = Candidate("c1", event([concept("a", 0.9)]), concepts)
    assert decide(odd)
    odd.concepts = [{"id": "a", "value": math.inf}]
    assert not decide(odd)


@pytest.mark.parametrize(
    ("operator", "params", "field"),
    [
        ("max_probability_below", {"threshold": 1.5}, "threshold"),
        ("min_probability_above", {}, "threshold"),
        ("margin_below", {"margin": 0}, "margin"),
        ("entropy_above", {"threshold": -1}, "threshold"),
        ("entropy_above", {"threshold": 1, "bits": 2}, "bits"),
    ],
)
def test_bad_parameters_name_the_field(operator: str, params: dict[str, object], field: str) -> None:
    with pytest.raises(WorkflowError, match=node_error(operator) + f"field `{field}`"):
        compile_one(operator, **params)


@settings(max_examples=300)
@given(st.lists(unit, max_size=8), unit)
def test_thresholds_agree_with_direct_computation(values: list[float], threshold: float) -> None:
    evt = event([concept(f"c{i}", v) for i, v in enumerate(values)])
    ranked = sorted(values, reverse=True)
    assert compile_one("max_probability_below", threshold=threshold)(candidate(evt)) == bool(
        values and max(values) < threshold
    )
    assert compile_one("min_probability_above", threshold=threshold)(candidate(evt)) == bool(
        values and max(values) > threshold
    )
    if threshold > 0:
        second = ranked[1] if len(ranked) > 1 else 0.0
        expected = bool(values) and ranked[0] - second < threshold
        assert compile_one("margin_below", margin=threshold)(candidate(evt)) == expected
    total = sum(values)
    entropy = -sum(p * math.log2(p) for p in (v / total for v in values) if p > 0) if total > 0 else None
    passes = compile_one("entropy_above", threshold=threshold * 3)(candidate(evt))
    if entropy is None:
        assert not passes
    elif abs(entropy - threshold * 3) > 1e-6:
        assert passes == (entropy >= threshold * 3)
