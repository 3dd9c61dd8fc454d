"""The pre-queue path, free of Faust and Kafka: decoded event → the collectors' queued inputs.

The worker's selecting agent and ``collectors simulate`` both call :func:`select`: one implementation.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from streams.core import ledger as outcome
from streams.core.ids import input_id
from streams.core.ledger import Ledger
from streams.core.models import ModelCalls
from streams.core.operators.base import Candidate
from streams.core.routing import CollectorIndex, CompiledCollector

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
    judged = ledger.judged
    concepts, regions = Candidate.output_of(event)  # read once for all the collectors' candidates
    for collector in matches:
        cid = collector.id
        if not collector.active:
            judged(cid, outcome.PAUSED)
            continue
        candidate = Candidate(cid, event, concepts, regions, {})
        try:
            stopped_by = collector.pre_queue.run(candidate)
        except Exception as exc:  # an operator bug must not stop the worker: dead-letter the event
            judged(cid, outcome.OPERATOR_ERRORS)
            rejected.append(Rejection(cid, "operator_error", f"{type(exc).__name__}: {exc}"))
            continue
        if stopped_by is not None:
            judged(cid, _filtered(stopped_by))
            continue
        judged(cid, outcome.QUEUED)
        queued.append((collector, queue_record(collector, event, candidate)))
    return queued, rejected


_FILTERED_OUTCOMES: dict[str, str] = {}


def _filtered(label: str) -> str:
    """The outcome of a step that stopped a candidate (``out:`` + its label), made once per label: counting
    it then hashes and compares one string object, not a new one per event."""
    name = _FILTERED_OUTCOMES.get(label)
    if name is None:
        name = _FILTERED_OUTCOMES[label] = outcome.FILTERED_PREFIX + label
    return name


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
        data["concepts"] = labels_of(candidate.concepts)
    record: dict[str, Any] = {
        "collector_id": collector.id,
        "event_id": event["id"],
        "input": {"id": input_id(collector.id, event["id"]), "data": data},
    }
    if collector.after_queue.steps:
        # What the steps after the queue judge: the original input, and the concepts as the pre-queue
        # steps narrowed them.
        record["original"] = {
            "id": event["id"],
            "created_at": event.get("created_at"),
            "_kafka_timestamp_ms": event.get("_kafka_timestamp_ms"),
            "output": {"input": original, "data": {"concepts": candidate.concepts, "regions": candidate.regions}},
        }
    return record


def labels_of(concepts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Concepts as an input's labels: id, name (the id when it has none) and value."""
    return [{"id": c["id"], "name": c.get("name") or c["id"], "value": c["value"]} for c in concepts]


def after_queue_candidate(
    collector: CompiledCollector,
    record: dict[str, Any],
    state: MutableMapping[str, Any] | None,
    models: ModelCalls | None = None,
) -> Candidate:
    """The candidate the steps after the queue judge, with the memory of stateful operators and the way
    ``model`` nodes call models."""
    candidate = Candidate.of(collector.id, record["original"], state)
    candidate.models = models
    return candidate


async def after_queue_passes(
    collector: CompiledCollector,
    record: dict[str, Any],
    ledger: Ledger,
    state: MutableMapping[str, Any] | None = None,
    models: ModelCalls | None = None,
) -> bool:
    """Run the steps after the queue; count a stop under the node that stopped it, and the notes of ``model``
    nodes (kept on error, skipped offline). A ``model`` node with ``use_as_labels`` makes the record's posted
    labels its concepts. Raises ``ModelRefused`` when a model refused the input for good (``on_error: wait``)."""
    if not collector.after_queue.steps:
        return True
    candidate = after_queue_candidate(collector, record, state, models)
    stopped_by = await collector.after_queue.run_async(candidate)
    for note in candidate.notes:
        ledger.count(collector.id, note)
    if stopped_by is not None:
        ledger.filtered_after_queue(collector.id, stopped_by)
        return False
    if candidate.labels is not None:
        record["input"]["data"]["concepts"] = labels_of(candidate.labels)
    return True


def refund(collector: CompiledCollector, record: dict[str, Any], state: MutableMapping[str, Any]) -> None:
    """Give back what stateful steps took for an input the destination already had (INPUT_DUPLICATE)."""
    if not collector.after_queue.steps:
        return
    candidate = after_queue_candidate(collector, record, state)
    for step in collector.after_queue.steps:
        if step.refund is not None:
            step.refund(candidate)
