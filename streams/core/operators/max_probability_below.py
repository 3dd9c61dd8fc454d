"""``max_probability_below``: keep uncertain predictions, whose top concept value is below a threshold.

Rules: the top value is the highest value of the judged concepts (the top-level concepts, or every
region's concepts when there are no top-level ones; concepts without a finite value are ignored).
No concepts: no prediction to judge, the event stops. A top value equal to the threshold stops (strictly below).

Example node::

    {operator: max_probability_below, threshold: 0.6}   # the model was not sure: worth labelling
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streams.core.operators._concepts import ranked_values
from streams.core.operators.base import Candidate, Decision, Operator


class MaxProbabilityBelowParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(ge=0.0, le=1.0, description="The top concept value must be below this.")


def build(params: MaxProbabilityBelowParams) -> Decision:
    threshold = params.threshold

    def max_probability_below(candidate: Candidate) -> bool:
        values = ranked_values(candidate)
        return bool(values) and values[0] < threshold

    return max_probability_below


OPERATOR = Operator(name="max_probability_below", stages=("pre", "post"), params=MaxProbabilityBelowParams, build=build)
