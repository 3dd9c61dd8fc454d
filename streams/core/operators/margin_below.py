"""``margin_below``: keep predictions whose two best concepts are close (the model hesitated between them).

Rules: the margin is the top value minus the second value of the judged concepts (the top-level
concepts, or every region's concepts when there are no top-level ones; concepts without a finite value
are ignored). One concept: the second value is 0, so the margin is the top value. Ties: the margin is 0,
which is below any margin. No concepts: nothing to judge, the event stops.

Example node::

    {operator: margin_below, margin: 0.1}   # e.g. dog 0.48 vs. cat 0.45
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streams.core.operators._concepts import ranked_values
from streams.core.operators.base import Candidate, Decision, Operator


class MarginBelowParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    margin: float = Field(gt=0.0, le=1.0, description="Top value minus second value must be below this.")


def build(params: MarginBelowParams) -> Decision:
    margin = params.margin

    def margin_below(candidate: Candidate) -> bool:
        values = ranked_values(candidate)
        if not values:
            return False
        second = values[1] if len(values) > 1 else 0.0
        return values[0] - second < margin

    return margin_below


OPERATOR = Operator(name="margin_below", stages=("pre", "post"), params=MarginBelowParams, build=build)
