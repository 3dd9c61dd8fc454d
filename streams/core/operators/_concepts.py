"""Reading the model's concepts, shared by the pre-queue operators.

Rules every operator follows:

* a concept counts only when it is a mapping whose ``value`` is a finite number (not a bool); others are
  ignored, so an operator called directly with odd values never crashes;
* the probability operators judge the top-level concepts, and, when there are none, the concepts of
  all regions together (a detector's output has only region concepts);
* ties on the top value go to the concept listed first;
* narrowing assigns new lists and new region dicts: the event, shared by all collectors, is never modified.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import Field

from streams.core.operators.base import Candidate

Concept = dict[str, Any]
ConceptKey = Annotated[str, Field(min_length=1)]
"""A concept id or name, as parameters name concepts."""
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
"""A threshold or fraction in [0, 1]."""
T = TypeVar("T")

EPSILON = 1e-9
"""Tolerance for floating-point equality (``EQUAL``) and bounds computed by sums (entropy)."""


_INFINITY = math.inf


def value_of(concept: object) -> float | None:
    """The concept's value, or None when it is not a finite number."""
    value = concept.get("value") if isinstance(concept, dict) else None
    if type(value) is float:  # the common case, settled by one type check (every probability operator's hot path)
        return value if -_INFINITY < value < _INFINITY else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def region_concepts(region: object) -> list[Concept]:
    """A region's concepts (``region.data.concepts``), empty when the region has none or is malformed."""
    data = region.get("data") if isinstance(region, dict) else None
    concepts = data.get("concepts") if isinstance(data, dict) else None
    return concepts if isinstance(concepts, list) else []


def valid(concepts: object) -> list[Concept]:
    """The concepts that have a finite value."""
    return [c for c in concepts if value_of(c) is not None] if isinstance(concepts, list) else []


def judged_concepts(candidate: Candidate) -> list[Concept]:
    """The valid top-level concepts, or, when there are none, the valid concepts of every region."""
    return _judged(candidate, valid)


def ranked_values(candidate: Candidate) -> list[float]:
    """The judged concepts' values, highest first."""
    values = _judged(candidate, _finite_values)
    values.sort(reverse=True)
    return values


def _judged(candidate: Candidate, read: Callable[[object], list[T]]) -> list[T]:
    """``read`` of the top-level concepts, or, when that is empty, of every region's concepts (a detector's
    output has only region concepts)."""
    return read(candidate.concepts) or [item for region in candidate.regions for item in read(region_concepts(region))]


def _finite_values(concepts: object) -> list[float]:
    """The finite values of ``concepts``, each read once (the probability operators' hot path)."""
    if not isinstance(concepts, list):
        return []
    return [value for value in map(value_of, concepts) if value is not None]


def top_concept(concepts: list[Concept]) -> Concept | None:
    """The valid concept with the highest value (the first listed on a tie), None when there is none."""
    best: Concept | None = None
    best_value = -math.inf
    for concept in valid(concepts):
        value = value_of(concept) or 0.0
        if value > best_value:
            best, best_value = concept, value
    return best


def lookup(table: Mapping[str, T], concept: Concept) -> T | None:
    """The entry a concept is named by in ``table``: by its id first, then by its name."""
    for key in (concept.get("id"), concept.get("name")):
        if isinstance(key, str) and key in table:
            return table[key]
    return None


def narrow(candidate: Candidate, keep: Callable[[list[Concept]], list[Concept]]) -> bool:
    """Replace the top-level concepts by ``keep(concepts)`` and each region's by ``keep(its concepts)``.

    ``keep`` sees the concepts as the event has them and must drop those without a finite value
    (:func:`value_of` is None). A region left with no concept is dropped. True when a top-level concept or a
    region remains.
    """
    concepts = candidate.concepts
    candidate.concepts = keep(concepts) if isinstance(concepts, list) else []
    regions: list[dict[str, Any]] = []
    for region in candidate.regions:
        kept = keep(region_concepts(region))
        if kept:  # so the region is a dict holding a ``data`` dict
            regions.append({**region, "data": {**region["data"], "concepts": kept}})
    candidate.regions = regions
    return bool(candidate.concepts or candidate.regions)
