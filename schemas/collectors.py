"""Collector configuration: collectors, their sources and destinations, and workflows of operator nodes.

Field names follow the original product (see REFERENCE.md). A document is YAML or JSON with
``collectors:`` and ``workflows:`` lists.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"


class Source(BaseModel):
    """The model a collector watches, and optionally which caller's predictions."""

    model_config = ConfigDict(extra="forbid")

    model_user_id: str = Field(min_length=1)
    model_app_id: str = Field(min_length=1)
    model_id: str = Field(min_length=1)
    model_version_id: str | None = None
    caller_user_id: str | None = None

    @property
    def model_key(self) -> tuple[str, str, str]:
        """The (user, app, model) triple collectors are indexed by."""
        return (self.model_user_id, self.model_app_id, self.model_id)


class Destination(BaseModel):
    """The app the collected inputs are posted to, and the key that may post there."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(pattern=r"^https?://", description="Base URL of the inputs service.")
    user_id: str = Field(min_length=1)
    app_id: str = Field(min_length=1)
    key: SecretStr | None = Field(default=None, description="API key with the PostInputs scope.")
    key_env: str | None = Field(default=None, description="Name of an environment variable holding the key.")

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_key(self) -> Destination:
        if (self.key is None) == (self.key_env is None):
            raise ValueError("give exactly one of `key` or `key_env` (the name of a variable holding the key)")
        return self


class Node(BaseModel):
    """One workflow node: an operator name and its parameters (validated by the operator)."""

    model_config = ConfigDict(extra="allow")

    operator: str = Field(min_length=1)

    @property
    def parameters(self) -> dict[str, Any]:
        """The node's parameters: every field but ``operator``."""
        return dict(self.model_extra or {})


class Workflow(BaseModel):
    """An ordered list of nodes; each passes the event on or stops it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    description: str = ""
    nodes: list[Node] = Field(min_length=1)


class Collector(BaseModel):
    """A standing rule: watch a model, keep some of its predictions, post their inputs to an app."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    description: str = ""
    source: Source
    destination: Destination
    pre_queue_random_sample: float | None = Field(default=None, gt=0.0, le=1.0)
    pre_queue_workflow_id: str | None = None
    post_queue_workflow_id: str | None = None
    collect_outputs: bool = False
    status: Literal["active", "paused"] = "active"

    @model_validator(mode="after")
    def _has_a_step(self) -> Collector:
        if (
            self.pre_queue_random_sample is None
            and self.pre_queue_workflow_id is None
            and self.post_queue_workflow_id is None
        ):
            raise ValueError(
                f"collector {self.id!r} needs at least one of `pre_queue_random_sample`, "
                "`pre_queue_workflow_id` or `post_queue_workflow_id`"
            )
        return self


class CollectorsDocument(BaseModel):
    """A configuration document: collectors and the workflows they refer to."""

    model_config = ConfigDict(extra="forbid", title="CollectorsConfig")

    collectors: list[Collector] = Field(default_factory=list)
    workflows: list[Workflow] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> CollectorsDocument:
        _unique("collector", [c.id for c in self.collectors])
        _unique("workflow", [w.id for w in self.workflows])
        known = {w.id for w in self.workflows}
        for collector in self.collectors:
            for field in ("pre_queue_workflow_id", "post_queue_workflow_id"):
                workflow_id = getattr(collector, field)
                if workflow_id is not None and workflow_id not in known:
                    raise ValueError(
                        f"collector {collector.id!r}: {field} {workflow_id!r} is not a workflow of this "
                        f"document (known: {sorted(known) or 'none'})"
                    )
        return self


def _unique(kind: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"{kind} id {item!r} appears twice")
        seen.add(item)
