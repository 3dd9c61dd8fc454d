"""Run collectors over events without Kafka and without posting, with the worker's own code.

The steps that load images (``image_check``, ``near_duplicate``) fetch an image given by URL, as the worker
would; offline, such a step does not judge an input whose image is a URL: the input passes it and is
counted as not judged. Inline images (``base64``) are always judged. ``model`` nodes call the models given
(``models``); without them (offline) they judge nothing: the input passes, counted as ``model_skipped:<node>``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.core import ledger as outcome
from streams.core.config import read_document
from streams.core.decoding import DecodeError, decode_event
from streams.core.ledger import Ledger
from streams.core.models import ModelCalls
from streams.core.operators.base import Candidate
from streams.core.routing import CollectorIndex, CompiledCollector, build_index
from streams.core.selection import after_queue_passes, select
from streams.core.workflows import Step, Steps

OFFLINE_KEY = "simulate-offline"


@dataclass(slots=True)
class SimulationReport:
    """Per collector (by qualified id), the event ids it would post in input order, and its funnel."""

    selected: dict[str, list[str]]
    ledger: Ledger
    invalid: list[tuple[int, str]] = field(default_factory=list)
    fetched: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Image URLs fetched, by (collector, step)."""
    not_judged: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Inputs offline steps let through unjudged (their image is a URL), by (collector, step)."""

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
            "fetched": [{"collector": c, "step": s, "count": n} for (c, s), n in sorted(self.fetched.items())],
            "not_judged": [{"collector": c, "step": s, "count": n} for (c, s), n in sorted(self.not_judged.items())],
        }


def offline_index(config: Path) -> CollectorIndex:
    """The configuration's collectors, compiled; keys are not needed offline, so none is resolved."""
    document = read_document(config)
    return build_index(document, {c.id: OFFLINE_KEY for c in document.collectors})


def fetching_steps(index: CollectorIndex) -> dict[str, tuple[str, ...]]:
    """By collector, the labels of its steps that load images (and fetch those given by URL)."""
    found = {c.id: tuple(step.label for step in c.after_queue.steps if _loads_images(step)) for c in index}
    return {cid: labels for cid, labels in found.items() if labels}


def model_steps(index: CollectorIndex) -> dict[str, tuple[str, ...]]:
    """By collector, the labels of its steps that call a model."""
    found = {c.id: tuple(step.label for step in c.after_queue.steps if step.calls_model) for c in index}
    return {cid: labels for cid, labels in found.items() if labels}


def _loads_images(step: Step) -> bool:
    """Steps doing I/O other than calling a model load images."""
    return step.is_async and not step.calls_model


async def simulate(
    index: CollectorIndex,
    lines: Iterable[bytes],
    *,
    offline: bool = False,
    progress: Callable[[int], None] | None = None,
    models: ModelCalls | None = None,
) -> SimulationReport:
    """What the worker would do with these events, without posting anything; ``progress`` is called with
    the number of lines read after each line; ``model`` nodes call ``models`` (None: they do not judge)."""
    ledger = Ledger()
    state: dict[str, Any] = {}
    selected: dict[str, list[str]] = {c.id: [] for c in index}
    report = SimulationReport(selected=selected, ledger=ledger)
    watched = {c.id: _watched(c, report, offline) for c in index}
    for number, line in enumerate(lines, start=1):
        if progress is not None:
            progress(number)
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
            if await after_queue_passes(watched[collector.id], record, ledger, state, models):
                ledger.count(collector.id, outcome.POSTED)
                selected[collector.id].append(record["event_id"])
    return report


def _watched(collector: CompiledCollector, report: SimulationReport, offline: bool) -> CompiledCollector:
    """The collector with its image-loading steps counting URL fetches, or (offline) not judging them."""
    if not any(_loads_images(step) for step in collector.after_queue.steps):
        return collector
    steps = tuple(
        _watch(collector.id, step, report, offline) if _loads_images(step) else step
        for step in collector.after_queue.steps
    )
    return dataclasses.replace(collector, after_queue=Steps(steps))


def _watch(collector_id: str, step: Step, report: SimulationReport, offline: bool) -> Step:
    async def decide(candidate: Candidate) -> bool:
        image = candidate.input_data.get("image")
        by_url = isinstance(image, dict) and not image.get("base64") and bool(image.get("url"))
        if by_url and offline:
            report.not_judged[(collector_id, step.label)] += 1
            return True
        if by_url:
            report.fetched[(collector_id, step.label)] += 1
        return bool(await step.decide(candidate))  # type: ignore[misc]

    return dataclasses.replace(step, decide=decide)
