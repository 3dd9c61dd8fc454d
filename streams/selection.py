"""The pre-queue path, free of Faust and Kafka: decoded event → the collectors' queued inputs.

The worker's selecting agent and ``collectors simulate`` both call :func:`select`: one implementation.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from streams import ledger as outcome
from streams.delivery.ids import input_id
from streams.ledger import Ledger
from streams.operators.base import Candidate
from streams.routing import CollectorIndex, CompiledCollector

PROVENANCE_KEY = "collector"


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event one collector could not judge (an operator raised); it is dead-lettered, not lost."""

    collector_id: str
    reason: str
    detail: str


def select(
    event: dict[str, Any], index: CollectorIndex, ledger: Ledger
) -> tuple[list[tuple[CompiledCollector, dict[str, Any]]], list[Rejection]]:
    """Run every matching collector's pre-queue steps; return the queue records and the rejections."""
    matches = index.matching(event)
    if not matches:
        ledger.events[outcome.UNMATCHED] += 1
        return [], []
    queued: list[tuple[CompiledCollector, dict[str, Any]]] = []
    rejected: list[Rejection] = []
    for collector in matches:
        cid = collector.id
        ledger.count(cid, outcome.SEEN)
        if not collector.active:
            ledger.count(cid, outcome.PAUSED)
            continue
        candidate = Candidate.of(cid, event)
        try:
            stopped_by = collector.pre_queue.run(candidate)
        except Exception as exc:  # an operator bug must not stop the worker: dead-letter the event
            ledger.count(cid, outcome.OPERATOR_ERRORS)
            rejected.append(Rejection(cid, "operator_error", f"{type(exc).__name__}: {exc}"))
            continue
        if stopped_by is not None:
            ledger.filtered(cid, stopped_by)
            continue
        ledger.count(cid, outcome.QUEUED)
        queued.append((collector, queue_record(collector, event, candidate)))
    return queued, rejected


def queue_record(collector: CompiledCollector, event: dict[str, Any], candidate: Candidate) -> dict[str, Any]:
    """The queue topic's record: the input to post, with provenance in its metadata, and no key."""
    output = event["output"]
    original = output["input"]
    source_data = original["data"]
    model = output["model"]
    data: dict[str, Any] = {k: v for k, v in source_data.items() if k != "metadata"}
    metadata = dict(source_data.get("metadata") or {})
    metadata[PROVENANCE_KEY] = {
        "id": collector.spec.id,
        "event_id": event["id"],
        "input_id": original.get("id"),
        "model": f"{model['user_id']}/{model['app_id']}/{model['id']}",
        "model_version_id": (model.get("model_version") or {}).get("id"),
        "created_at": event.get("created_at"),
    }
    data["metadata"] = metadata
    if collector.spec.collect_outputs:
        data["concepts"] = [
            {"id": c["id"], "name": c.get("name") or c["id"], "value": c["value"]} for c in candidate.concepts
        ]
    record: dict[str, Any] = {
        "collector_id": collector.id,
        "event_id": event["id"],
        "input": {"id": input_id(collector.id, event["id"]), "data": data},
    }
    if collector.post_queue.steps:
        record["original"] = {"id": event["id"], "output": {"input": original, "data": output.get("data") or {}}}
    return record


async def post_queue_passes(
    collector: CompiledCollector, record: dict[str, Any], ledger: Ledger, state: MutableMapping[str, Any] | None = None
) -> bool:
    """Run the post-queue workflow on the original input; count a stop under the node that stopped it."""
    if not collector.post_queue.steps:
        return True
    candidate = Candidate.of(collector.id, record["original"], state)
    stopped_by = await collector.post_queue.run_async(candidate)
    if stopped_by is not None:
        ledger.filtered(collector.id, stopped_by, post_queue=True)
        return False
    return True
