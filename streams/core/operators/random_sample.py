"""``random_sample``: keep a fixed fraction of events, the same decision on every redelivery.

The decision is a pure function of (collector id, event id): the first 8 bytes of
``blake2b(collector_id + "\\x00" + event_id, digest_size=8)`` read as a big-endian integer and divided
by 2**64 give a number in [0, 1); the event is kept when it is below ``keep_fraction``. Any language can
reproduce it.

Example node::

    {operator: random_sample, keep_fraction: 0.05}   # keep 5% of the model's predictions
"""

from __future__ import annotations

from hashlib import blake2b

from pydantic import BaseModel, ConfigDict, Field

from streams.core.operators.base import Candidate, Decision, Operator

_SCALE = float(2**64)


class RandomSampleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep_fraction: float = Field(gt=0.0, le=1.0, description="Fraction of events kept, in (0, 1].")


def sample_point(collector_id: str, event_id: str) -> float:
    """The event's deterministic point in [0, 1) for this collector."""
    digest = blake2b(f"{collector_id}\x00{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def keeps(collector_id: str, event_id: str, keep_fraction: float) -> bool:
    """Whether a collector sampling ``keep_fraction`` keeps this event."""
    return keep_fraction >= 1.0 or sample_point(collector_id, event_id) < keep_fraction


def build(params: RandomSampleParams) -> Decision:
    fraction = params.keep_fraction

    def random_sample(candidate: Candidate) -> bool:
        return keeps(candidate.collector_id, candidate.event_id, fraction)

    return random_sample


OPERATOR = Operator(name="random_sample", stages=("pre",), params=RandomSampleParams, build=build)
