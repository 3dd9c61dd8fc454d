"""``similar_to``: keep an input whose embedding lies within ``max_distance`` of any reference example.

"Find more like these": the references are given as ``vectors`` (embeddings of the model before this node),
or as ``inputs`` (Clarifai ``data``: ``{image: {url | base64}}`` or ``{text: {raw}}``) that the ``model`` node
before this one embeds once, when the first input reaches this node (and again only when the workflow
changes). The distance is the cosine distance (1 - cosine similarity, 0 to 2) to the nearest reference.

An input without an embedding (the model node did not judge it: ``on_error: keep``, or offline) passes.

Example node (after a ``model`` node)::

    {operator: similar_to, max_distance: 0.2, inputs: [{image: {url: "https://example.com/crack.jpg"}}]}
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.core.embeddings import nearest_distance, unit
from streams.core.models import ModelFailed, ModelInput, ModelSpec, input_of
from streams.core.operators.base import AsyncDecision, Candidate, Operator


class SimilarToParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_distance: float = Field(ge=0.0, le=2.0, description="Most cosine distance to the nearest reference.")
    vectors: list[list[float]] | None = Field(default=None, min_length=1)
    inputs: list[dict[str, Any]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _references(self) -> SimilarToParams:
        if (self.vectors is None) == (self.inputs is None):
            raise ValueError("give the references as `vectors` or as `inputs` (one of them)")
        for index, vector in enumerate(self.vectors or []):
            if unit(vector) is None:
                raise ValueError(f"`vectors[{index}]` is not a non-zero vector of finite numbers")
        if self.vectors is not None and len({len(v) for v in self.vectors}) > 1:
            raise ValueError("`vectors` must all have the same number of dimensions")
        for index, data in enumerate(self.inputs or []):
            if input_of(data) is None:
                raise ValueError(f"`inputs[{index}]` has no image (url or base64) and no text (raw or url)")
        return self

    def references(self) -> list[tuple[str, ModelInput]]:
        """Each reference input with an id derived from its data (cached results never mix references)."""
        found = []
        for data in self.inputs or []:
            item = input_of(data)
            if item is not None:
                digest = hashlib.blake2b(orjson.dumps(data, option=orjson.OPT_SORT_KEYS), digest_size=16)
                found.append((f"reference-{digest.hexdigest()}", item))
        return found


def _matrix(vectors: list[Any]) -> np.ndarray:
    rows = [row for row in map(unit, vectors) if row is not None]
    return np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def build(params: SimilarToParams, label: str = "similar_to") -> AsyncDecision:
    given = _matrix(list(params.vectors)) if params.vectors is not None else None
    embedded: dict[ModelSpec, np.ndarray] = {}
    lock = asyncio.Lock()

    async def references(candidate: Candidate) -> np.ndarray | None:
        """The references' embeddings by the model that embedded the candidate (once per model)."""
        if given is not None:
            return given
        spec, calls = candidate.embedded_by, candidate.models
        if spec is None or calls is None:
            return None
        async with lock:
            if spec not in embedded:
                answers = await asyncio.gather(
                    *(calls.predict(spec, input_id, item) for input_id, item in params.references())
                )
                embedded[spec] = _matrix([a.embedding for a in answers if a.embedding is not None])
        return embedded[spec]

    async def similar_to(candidate: Candidate) -> bool:
        if candidate.embedding is None:
            return True
        vector = unit(candidate.embedding)
        try:
            matrix = await references(candidate)
        except ModelFailed:  # the references could not be embedded (on_error keep or drop): not judged
            return True
        if vector is None or matrix is None or matrix.shape[1:] != (vector.size,):
            return False
        return nearest_distance(vector, matrix) <= params.max_distance

    return similar_to


OPERATOR = Operator(
    name="similar_to",
    stages=("pre", "post"),
    params=SimilarToParams,
    build=build,
    is_async=True,
    calls_model=True,
    needs_embedding=True,
)
