"""``stratified_sample``: keep a different fraction of events per predicted class, for class balance.

Rules: the event's class is its top concept (the highest value among the top-level concepts, or every
region's concepts when there are none; the first listed on a tie). Its fraction is the entry naming its
id, else its name, else ``default`` (1.0 unless set: classes not listed are all kept). No concepts: the
event is kept with the ``default`` fraction. The decision reuses ``random_sample``'s deterministic point
of (collector id, event id), so a redelivered event gets the same decision.

Example node::

    {operator: stratified_sample, keep_fraction_by_concept: {dog: 0.05, ai_cat: 0.2}, default: 1.0}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streams.core.operators._concepts import ConceptKey, Probability, judged_concepts, lookup, top_concept
from streams.core.operators.base import Candidate, Decision, Operator
from streams.core.operators.random_sample import keeps


class StratifiedSampleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep_fraction_by_concept: dict[ConceptKey, Probability] = Field(
        min_length=1, description="Top concept id or name → fraction of its events kept, in [0, 1]."
    )
    default: Probability = Field(default=1.0, description="Fraction kept for any other top concept.")


def build(params: StratifiedSampleParams) -> Decision:
    fractions = dict(params.keep_fraction_by_concept)
    default = params.default

    def stratified_sample(candidate: Candidate) -> bool:
        top = top_concept(judged_concepts(candidate))
        fraction = lookup(fractions, top) if top is not None else None
        return keeps(candidate.collector_id, candidate.event_id, default if fraction is None else fraction)

    return stratified_sample


OPERATOR = Operator(name="stratified_sample", stages=("pre",), params=StratifiedSampleParams, build=build)
