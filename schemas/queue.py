"""Records on the internal topics: queued inputs and dead letters (plain JSON, readable with kcat)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class QueuedInput(BaseModel):
    """An input a collector selected, waiting to be posted (queue topic, keyed by collector id).

    Keys never travel on a topic: the posting agent looks the collector's key up by ``collector_id``.
    """

    model_config = ConfigDict(extra="allow")

    collector_id: str
    event_id: str
    input: dict[str, Any]
    original: dict[str, Any] | None = None


class DeadLetter(BaseModel):
    """A record that could not be processed, with why, and the bytes or input needed to replay it."""

    model_config = ConfigDict(extra="allow")

    reason: str
    detail: str
    stage: str
    collector_id: str | None = None
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    status_code: int | None = None
    replayable: bool = False
    value: str | None = None
    value_base64: str | None = None
    input: dict[str, Any] | None = None
    at: str
