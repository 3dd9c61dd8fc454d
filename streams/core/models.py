"""What a workflow's ``model`` node asks of a model, and what it gets back: pure types and mappings.

The calls themselves (HTTP, gRPC, batching, retries) live below the worker (``streams.models``); the node
reaches them through :class:`ModelCalls`, handed to each candidate as ``Candidate.models`` (None offline).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol

Kind = Literal["image", "text"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model endpoint: how to reach it and how to read it (hashable: calls are grouped by it)."""

    protocol: Literal["clarifai", "open_inference"]
    transport: Literal["rest", "grpc"]
    url: str
    """REST base URL (``https://api.clarifai.com``, ``http://triton:8000``) or gRPC target (``host:port``,
    ``https://host``)."""
    model_id: str
    version_id: str | None = None
    user_id: str | None = None
    app_id: str | None = None
    key: str | None = None
    labels: tuple[str, ...] | None = None
    """Open Inference Protocol: the class of each probability, in order (None: read from the metadata)."""
    probabilities_output: str | None = None
    embedding_output: str | None = None
    batch_size: int = 128
    concurrency: int = 4
    timeout_s: float = 10.0
    attempts: int = 4
    """Tries before a failing call counts as failed (``on_error: keep | drop``); ``wait`` tries until it
    succeeds."""
    wait: bool = True
    max_concepts: int = 200
    min_value: float = 0.0
    _hash: int = field(init=False, compare=False, repr=False, default=0)

    def __post_init__(self) -> None:
        # Hashed once: every call of every input looks its model up by it (a dataclass hashes all its fields).
        object.__setattr__(self, "_hash", hash(tuple(getattr(self, f.name) for f in fields(self) if f.compare)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def name(self) -> str:
        """The model as people name it in logs and errors."""
        version = f"@{self.version_id}" if self.version_id else ""
        owner = f"{self.user_id}/{self.app_id}/" if self.user_id else ""
        return f"{self.url} {owner}{self.model_id}{version}"


@dataclass(frozen=True, slots=True)
class ModelInput:
    """One input as a model receives it: an image (URL or bytes) or a text."""

    kind: Kind
    url: str | None = None
    raw: bytes | None = None
    text: str | None = None

    def clarifai_data(self) -> dict[str, Any]:
        """The input's ``data`` in Clarifai's shape."""
        if self.kind == "text":
            return {"text": {"raw": self.text}} if self.text is not None else {"text": {"url": self.url}}
        if self.raw is not None:
            return {"image": {"base64": base64.b64encode(self.raw).decode()}}
        return {"image": {"url": self.url}}


@dataclass(frozen=True, slots=True)
class ModelAnswer:
    """A model's output for one input: concepts (Clarifai's shape, highest first) and an embedding."""

    concepts: list[dict[str, Any]]
    embedding: tuple[float, ...] | None = None


class ModelFailed(Exception):
    """The model could not answer for an input (after the retries ``on_error`` allows): the node applies
    ``on_error``."""


class ModelRefused(Exception):
    """The model refused an input or the request for good (a bad input, a wrong model, a refused key): no retry
    helps. With ``on_error: wait`` the record goes to the dead-letter topic (replayable once fixed)."""


class ModelCalls(Protocol):
    """What a ``model`` node calls: batched, cached, retried below the worker."""

    async def predict(self, spec: ModelSpec, input_id: str, item: ModelInput) -> ModelAnswer:
        """The model's answer for one input (raises :class:`ModelFailed` or :class:`ModelRefused`)."""
        ...


def input_of(data: dict[str, Any]) -> ModelInput | None:
    """The model input of an event's ``data``: its image (inline bytes, else URL), else its text; None when it
    has neither or its inline image is not valid base64."""
    image, text = data.get("image"), data.get("text")
    if isinstance(image, dict):
        inline, url = image.get("base64"), image.get("url")
        if isinstance(inline, str) and inline:
            try:
                return ModelInput("image", raw=base64.b64decode(inline, validate=True))
            except ValueError:
                return None
        if isinstance(url, str) and url:
            return ModelInput("image", url=url)
    if isinstance(text, dict):
        raw, url = text.get("raw"), text.get("url")
        if isinstance(raw, str):
            return ModelInput("text", text=raw)
        if isinstance(url, str) and url:
            return ModelInput("text", url=url)
    return None


def concepts_of_probabilities(
    probabilities: Sequence[float], labels: Sequence[str], *, max_concepts: int, min_value: float
) -> list[dict[str, Any]]:
    """Class probabilities as Clarifai concepts (id and name the label), highest first, ties by label."""
    if len(probabilities) != len(labels):
        raise ValueError(f"the model answered {len(probabilities)} probabilities for {len(labels)} labels")
    ranked = sorted(
        ((float(value), label) for value, label in zip(probabilities, labels, strict=True) if value >= min_value),
        key=lambda pair: (-pair[0], pair[1]),
    )
    return [{"id": label, "name": label, "value": value} for value, label in ranked[:max_concepts]]
