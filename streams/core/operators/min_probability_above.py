"""``min_probability_above``: keep confident predictions, whose top concept value is above a threshold.

Rules: the top value is the highest value of the judged concepts (the top-level concepts, or every
region's concepts when there are no top-level ones; concepts without a finite value are ignored).
No concepts: no prediction to judge, the event stops. A top value equal to the threshold stops (strictly above).

Example node::

    {operator: min_probability_above, threshold: 0.95}   # confident predictions, e.g. for pseudo-labels
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streams.core.operators._concepts import ranked_values
from streams.core.operators.base import Candidate, Decision, Operator


class MinProbabilityAboveParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(ge=0.0, le=1.0, description="The top concept value must be above this.")


def build(params: MinProbabilityAboveParams) -> Decision:
    threshold = params.threshold

    def min_probability_above(candidate: Candidate) -> bool:
        values = ranked_values(candidate)
        return bool(values) and values[0] > threshold

    return min_probability_above


OPERATOR = Operator(name="min_probability_above", stages=("pre", "post"), params=MinProbabilityAboveParams, build=build)
