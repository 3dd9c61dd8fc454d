"""Workflow operators: one module each, each a pure function of (event, parameters) → decision."""

from __future__ import annotations

from streams.operators import random_sample
from streams.operators.base import Candidate, Decision, Operator, Stage

OPERATORS: dict[str, Operator] = {op.name: op for op in (random_sample.OPERATOR,)}

__all__ = ["OPERATORS", "Candidate", "Decision", "Operator", "Stage"]
