"""Workflow operators: one module each, each a pure function of (event, parameters) → decision."""

from __future__ import annotations

from streams.core.operators import (
    concept_map,
    concept_threshold,
    entropy_above,
    image_check,
    margin_below,
    max_probability_below,
    metadata_filter,
    min_probability_above,
    model,
    near_duplicate,
    novelty_above,
    python,
    quota,
    random_sample,
    similar_to,
    stratified_sample,
    text_check,
)
from streams.core.operators.base import AsyncDecision, Candidate, Decision, Operator, Stage

OPERATORS: dict[str, Operator] = {
    module.OPERATOR.name: module.OPERATOR
    for module in (
        random_sample,
        metadata_filter,
        max_probability_below,
        min_probability_above,
        concept_threshold,
        concept_map,
        margin_below,
        entropy_above,
        stratified_sample,
        quota,
        near_duplicate,
        image_check,
        text_check,
        python,
        model,
        novelty_above,
        similar_to,
    )
}

__all__ = ["OPERATORS", "AsyncDecision", "Candidate", "Decision", "Operator", "Stage"]
