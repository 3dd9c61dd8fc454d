"""``novelty_above``: keep an input whose embedding is far from every one this collector kept lately.

Diversity sampling on the embedding of the ``model`` node before it: the input passes when the cosine
distance (1 - cosine similarity, 0 to 2) from its embedding to the nearest of the collector's last ``memory``
embeddings that passed this node is at least ``min_distance``; its embedding is then remembered at once, with
the event's id: an event read again (after a crash or a rebalance) passes again rather than meet itself.
The memory is per collector and node, in the operator state (a Faust table in the worker: it survives
restarts and rebalances like ``quota``'s counts), ``memory`` embeddings at most, oldest forgotten first.

An input without an embedding (the model node did not judge it: ``on_error: keep``, or offline) passes and is
not remembered.

Example node (after a ``model`` node)::

    {operator: novelty_above, min_distance: 0.15, memory: 2000}
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streams.core.embeddings import EmbeddingMemory, unit
from streams.core.operators.base import Candidate, Decision, Operator


class NoveltyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_distance: float = Field(gt=0.0, le=2.0, description="Least cosine distance to every remembered embedding.")
    memory: int = Field(default=1000, ge=1, le=100_000, description="Embeddings remembered per collector.")


def build(params: NoveltyParams, label: str = "novelty_above") -> Decision:
    memory = EmbeddingMemory(params.memory)

    def novelty_above(candidate: Candidate) -> bool:
        if candidate.embedding is None:
            return True
        vector = unit(candidate.embedding)
        if vector is None:
            return False
        prefix = f"novelty|{candidate.collector_id}|{label}"
        if memory.nearest(candidate.state, prefix, vector) < params.min_distance:
            # near its own embedding when it passed here before (read again after a crash or a rebalance)
            return memory.remembers(candidate.state, prefix, candidate.event_id)
        memory.remember(candidate.state, prefix, vector, candidate.event_id)
        return True

    return novelty_above


OPERATOR = Operator(
    name="novelty_above",
    stages=("pre", "post"),
    params=NoveltyParams,
    build=build,
    stateful=True,
    needs_embedding=True,
)
