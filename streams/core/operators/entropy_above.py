"""``entropy_above``: keep predictions whose concept distribution is spread out (high entropy).

Rules: the judged concepts' values (the top-level concepts, or every region's concepts when there are
none; concepts without a finite value are ignored) are normalised to sum to 1, and the Shannon entropy
``-sum(p * log2(p))`` is compared in bits: the event passes when it is at least ``threshold`` (within
1e-9). Zero values add nothing. One concept: entropy 0. No concepts, or values all 0: no distribution,
the event stops. Two equal concepts give 1 bit, n equal concepts log2(n) bits.

Example node::

    {operator: entropy_above, threshold: 1.5}
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from streams.core.operators._concepts import EPSILON, ranked_values
from streams.core.operators.base import Candidate, Decision, Operator


class EntropyAboveParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(ge=0.0, allow_inf_nan=False, description="Minimum entropy, in bits.")


def entropy_bits(values: list[float]) -> float | None:
    """Shannon entropy (bits) of the values normalised to sum 1; None when they sum to 0 (or are empty)."""
    total = math.fsum(values)
    if total <= 0.0:
        return None
    return -math.fsum(p * math.log2(p) for p in (v / total for v in values) if p > 0.0)


def build(params: EntropyAboveParams) -> Decision:
    threshold = params.threshold

    def entropy_above(candidate: Candidate) -> bool:
        entropy = entropy_bits(ranked_values(candidate))
        return entropy is not None and entropy >= threshold - EPSILON

    return entropy_above


OPERATOR = Operator(name="entropy_above", stages=("pre", "post"), params=EntropyAboveParams, build=build)
