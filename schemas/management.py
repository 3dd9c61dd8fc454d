"""Records of the control topic: the collectors and workflows of every app, one compacted record each.

Key ``collector/{user_id}/{app_id}/{collector_id}`` or ``workflow/{user_id}/{app_id}/{workflow_id}``;
the value is a :class:`StoredCollector` or :class:`StoredWorkflow` as JSON, or null (a tombstone) once
deleted. The topic is the store: every worker reads it whole and keeps reading it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.collectors import Collector, Workflow

CONTROL_TOPIC = "collectors-control"


class StoredCollector(BaseModel):
    """A collector as stored: owned by the app it collects into."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["collector"] = "collector"
    user_id: str
    app_id: str
    collector: Collector
    created_at: str
    modified_at: str
    last_error: str | None = Field(default=None, description="Last error of the collector, e.g. a revoked key.")


class StoredWorkflow(BaseModel):
    """A workflow as stored, in the namespace of one app."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["workflow"] = "workflow"
    user_id: str
    app_id: str
    workflow: Workflow
    created_at: str
    modified_at: str


def collector_key(user_id: str, app_id: str, collector_id: str) -> str:
    return f"collector/{user_id}/{app_id}/{collector_id}"


def workflow_key(user_id: str, app_id: str, workflow_id: str) -> str:
    return f"workflow/{user_id}/{app_id}/{workflow_id}"
