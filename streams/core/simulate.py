"""Run collectors over events offline (no Kafka, no HTTP), with the worker's own code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.core import ledger as outcome
from streams.core.config import read_document
from streams.core.decoding import DecodeError, decode_event
from streams.core.ledger import Ledger
from streams.core.models import ModelCalls
from streams.core.routing import CollectorIndex, build_index
from streams.core.selection import after_queue_passes, select

OFFLINE_KEY = "simulate-offline"


@dataclass(slots=True)
class SimulationReport:
    """Per collector (by qualified id), the event ids it would post in input order, and its funnel."""

    selected: dict[str, list[str]]
    ledger: Ledger
    invalid: list[tuple[int, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        snapshot = self.ledger.snapshot()
        return {
            "collectors": [
                {
                    "id": cid.rsplit("/", 1)[-1],
                    "app": cid.rsplit("/", 1)[0],
                    "selected": ids,
                    "funnel": snapshot["collectors"].get(cid, {}),
                }
                for cid, ids in self.selected.items()
            ],
            "events": snapshot["events"],
            "invalid": [{"line": line, "reason": reason} for line, reason in self.invalid],
        }


def offline_index(config: Path) -> CollectorIndex:
    """The configuration's collectors, compiled; keys are not needed offline, so none is resolved."""
    document = read_document(config)
    return build_index(document, {c.id: OFFLINE_KEY for c in document.collectors})


def model_steps(index: CollectorIndex) -> dict[str, tuple[str, ...]]:
    """By collector, the labels of its steps that call a model."""
    found = {c.id: tuple(step.label for step in c.after_queue.steps if step.calls_model) for c in index}
    return {cid: labels for cid, labels in found.items() if labels}


async def simulate(index: CollectorIndex, lines: Iterable[bytes], models: ModelCalls | None = None) -> SimulationReport:
    """What the worker would do with these events, without posting anything; ``model`` nodes call ``models``
    (None: they do not judge, and the funnel counts ``model_skipped:<node>``)."""
    ledger = Ledger()
    state: dict[str, Any] = {}
    selected: dict[str, list[str]] = {c.id: [] for c in index}
    report = SimulationReport(selected=selected, ledger=ledger)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        ledger.events[outcome.EVENTS] += 1
        try:
            event = decode_event(line.rstrip(b"\r\n"))
        except DecodeError as exc:
            ledger.events[outcome.INVALID] += 1
            report.invalid.append((number, f"{exc.reason}: {exc.detail}"))
            continue
        ledger.events[outcome.DECODED] += 1
        queued, _rejected = select(event, index, ledger)
        for collector, record in queued:
            if await after_queue_passes(collector, record, ledger, state, models):
                ledger.count(collector.id, outcome.POSTED)
                selected[collector.id].append(record["event_id"])
    return report
