"""Build dead-letter records: the reason, where the record came from, and what is needed to replay it."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from streams.core.clock import utc_now


def for_event(
    raw: bytes,
    *,
    reason: str,
    detail: str,
    stage: str,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    collector_id: str | None = None,
) -> bytes:
    """A dead letter for an event that could not be decoded or judged; keeps its bytes for replay."""
    record: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "stage": stage,
        "collector_id": collector_id,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "replayable": False,
        "at": utc_now(),
    }
    try:
        record["value"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["value_base64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(record)


def for_input(
    queued: dict[str, Any],
    *,
    reason: str,
    detail: str,
    status_code: int | None,
    replayable: bool,
) -> bytes:
    """A dead letter for a queued input the destination refused; replayable ones can be posted again."""
    record = {
        "reason": reason,
        "detail": detail,
        "stage": "post",
        "collector_id": queued.get("collector_id"),
        "event_id": queued.get("event_id"),
        "status_code": status_code,
        "replayable": replayable,
        "input": queued.get("input"),
        "at": utc_now(),
    }
    return orjson.dumps(record)
