"""Collectors with model nodes, run by the worker's own after-queue code against a real model service."""

from __future__ import annotations

from typing import Any

from schemas.collectors import CollectorsDocument
from streams.core.ledger import Ledger
from streams.core.models import ModelCalls
from streams.core.routing import CompiledCollector, build_index
from streams.core.selection import after_queue_passes, select

SOURCE = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "general"}
DESTINATION = {"base_url": "http://127.0.0.1:1", "user_id": "me", "app_id": "pets", "key": "k"}


def collector(nodes: list[dict[str, Any]], **fields: Any) -> CompiledCollector:
    """One collector whose post-queue workflow is ``nodes``."""
    document = CollectorsDocument.model_validate(
        {
            "collectors": [
                {"id": "c", "source": SOURCE, "destination": DESTINATION, "post_queue_workflow_id": "w", **fields}
            ],
            "workflows": [{"id": "w", "nodes": nodes}],
        }
    )
    (compiled,) = build_index(document, {"c": "k"})
    return compiled


def text_event(event_id: str, text: str, model_id: str = "general") -> dict[str, Any]:
    """A prediction event of ``model_id`` on a text input."""
    return {
        "id": event_id,
        "created_at": "2026-12-07T10:00:00Z",
        "output": {
            "model": {"id": model_id, "user_id": "clarifai", "app_id": "main"},
            "input": {"id": f"in-{event_id}", "data": {"text": {"raw": text}}},
            "data": {"concepts": [{"id": "x", "name": "x", "value": 0.5}]},
        },
    }


async def run(
    compiled: CompiledCollector,
    events: list[dict[str, Any]],
    models: ModelCalls | None,
    state: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], Ledger]:
    """The queue records that pass the after-queue steps (judged together, as the posting agent does)."""
    import asyncio

    from streams.core.routing import CollectorIndex

    index = CollectorIndex([compiled])
    ledger = Ledger()
    state = {} if state is None else state
    records = [record for event in events for _, record in select(event, index, ledger)[0]]
    passed = await asyncio.gather(*(after_queue_passes(compiled, r, ledger, state, models) for r in records))
    return [record for record, ok in zip(records, passed, strict=True) if ok], ledger
