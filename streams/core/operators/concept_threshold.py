"""``concept_threshold``: keep the concepts whose value passes a per-concept threshold; drop the rest.

Rules: a concept's threshold is the entry naming its id, else its name, else ``"*"``; a concept no
entry names is removed. ``comparator`` (default ``GREATER_THAN_OR_EQUAL``: a value exactly at the
threshold counts) compares value to threshold; ``EQUAL`` allows 1e-9. Top-level concepts are narrowed to
those that satisfy; each region's concepts likewise, and a region left with none is dropped. The event
passes when a top-level concept or a region remains; no concepts at all: it stops. Concepts without a
finite value never satisfy.

Example node::

    {operator: concept_threshold, comparator: GREATER_THAN, concepts: {dog: 0.8, ai_cat: 0.7, "*": 0.95}}
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from streams.core.operators._concepts import EPSILON, Concept, ConceptKey, Probability, lookup, narrow, value_of
from streams.core.operators.base import Candidate, Decision, Operator

WILDCARD = "*"

Comparator = Literal["GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN", "LESS_THAN_OR_EQUAL", "EQUAL"]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GREATER_THAN": operator.gt,
    "GREATER_THAN_OR_EQUAL": operator.ge,
    "LESS_THAN": operator.lt,
    "LESS_THAN_OR_EQUAL": operator.le,
    "EQUAL": lambda value, threshold: abs(value - threshold) <= EPSILON,
}


class ConceptThresholdParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    concepts: dict[ConceptKey, Probability] = Field(
        min_length=1, description='Concept id or name (or "*" for every other concept) → threshold in [0, 1].'
    )
    comparator: Comparator = "GREATER_THAN_OR_EQUAL"


def build(params: ConceptThresholdParams) -> Decision:
    thresholds = dict(params.concepts)
    default = thresholds.get(WILDCARD)
    compare = _COMPARE[params.comparator]

    def satisfies(concept: Concept) -> bool:
        value = value_of(concept)
        if value is None:
            return False
        threshold = lookup(thresholds, concept)
        if threshold is None:
            threshold = default
        return threshold is not None and compare(value, threshold)

    def keep(concepts: list[Concept]) -> list[Concept]:
        return [c for c in concepts if satisfies(c)]

    def concept_threshold(candidate: Candidate) -> bool:
        return narrow(candidate, keep)

    return concept_threshold


OPERATOR = Operator(name="concept_threshold", stages=("pre", "post"), params=ConceptThresholdParams, build=build)
