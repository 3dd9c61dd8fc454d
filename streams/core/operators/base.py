"""What every operator shares: the candidate it judges, and how an operator is declared."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    from streams.core.models import ModelCalls, ModelSpec

Stage = Literal["pre", "post"]


@dataclass(slots=True)
class Candidate:
    """One decoded event as one collector's workflow sees it.

    ``event`` is shared by all collectors and never modified; ``concepts`` and ``regions`` start as
    the model's output and may be narrowed by nodes (later nodes see the narrowed set).
    """

    collector_id: str
    event: dict[str, Any]
    concepts: list[dict[str, Any]] = field(default_factory=list)
    regions: list[dict[str, Any]] = field(default_factory=list)
    state: MutableMapping[str, Any] = field(default_factory=dict)
    """Memory of stateful operators (quota, near_duplicate): a Faust table in the worker, a dict offline.
    Operators namespace their keys with the collector id."""
    embedding: tuple[float, ...] | None = None
    """The embedding the last ``model`` node answered (None before one, or when it could not judge)."""
    embedded_by: ModelSpec | None = None
    """The model that answered ``embedding``."""
    labels: list[dict[str, Any]] | None = None
    """Concepts to post as the input's labels (a ``model`` node with ``use_as_labels``)."""
    models: ModelCalls | None = None
    """How ``model`` nodes call models (None: offline, they let inputs through unjudged)."""
    notes: list[str] = field(default_factory=list)
    """Funnel counts besides the outcome (``model`` nodes that kept an input on error, or did not judge it)."""

    @classmethod
    def of(cls, collector_id: str, event: dict[str, Any], state: MutableMapping[str, Any] | None = None) -> Candidate:
        """A candidate holding the model's output concepts and regions as the event has them."""
        concepts, regions = cls.output_of(event)
        return cls(collector_id, event, concepts, regions, state if state is not None else {})

    @staticmethod
    def output_of(event: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The model's output concepts and regions as the event has them, where every candidate starts."""
        data = event["output"].get("data") or {}
        return data.get("concepts") or [], data.get("regions") or []

    def narrowed(self) -> Candidate:
        """A copy whose concept and region lists can be replaced without touching this one."""
        return Candidate(
            self.collector_id,
            self.event,
            self.concepts,
            self.regions,
            self.state,
            self.embedding,
            self.embedded_by,
            self.labels,
            self.models,
            self.notes,
        )

    def take_view(self, other: Candidate) -> None:
        """Adopt what ``other`` (a :meth:`narrowed` copy) judged: its concepts, regions, embedding, labels."""
        self.concepts, self.regions = other.concepts, other.regions
        self.embedding, self.embedded_by, self.labels = other.embedding, other.embedded_by, other.labels

    @property
    def event_id(self) -> str:
        return str(self.event["id"])

    @property
    def input_data(self) -> dict[str, Any]:
        """The original input's data (image or text, metadata)."""
        data: dict[str, Any] = self.event["output"]["input"]["data"]
        return data


Decision = Callable[[Candidate], bool]
"""A built operator: passes (True) or stops (False) a candidate; it may narrow its concepts."""

AsyncDecision = Callable[[Candidate], Awaitable[bool]]
"""A post-queue operator that does I/O (fetching an image over HTTP) decides asynchronously."""


@dataclass(frozen=True, slots=True)
class Operator:
    """An operator's declaration: its name, the stage it runs in, its parameters, and its builder."""

    name: str
    stages: tuple[Stage, ...]
    params: type[BaseModel]
    build: Callable[..., Decision | AsyncDecision]
    """Builds the decision from the parameters (and the node's label, for ``calls_model``/``needs_embedding``)."""
    is_async: bool = False
    stateful: bool = False
    """Keeps memory in ``Candidate.state``: the worker runs it where that memory is partitioned by collector
    (after the queue), so every worker shares it through a Faust table."""
    refund: Callable[[Any, Candidate], None] | None = None
    """Gives back what the decision took, when the destination says the input was a duplicate."""
    calls_model: bool = False
    """Calls a model (``model``; ``similar_to`` to embed its reference inputs): built with its step's label, run
    after the queue; offline it calls nothing."""
    needs_embedding: bool = False
    """Judges the embedding of a ``model`` node, which must come before it."""
