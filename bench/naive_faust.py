"""Baseline B: the naive Faust way to do the worker's pre-queue work.

Default Faust settings, events parsed into nested ``faust.Record`` models, and one ``await topic.send`` per
survivor. The decisions are the project's own operators (each collector's compiled pre-queue steps), run on a
plain dict made from the record whenever a collector watches the event's model, so the naive agent keeps
exactly the events the worker keeps. ``bench/run.py`` runs it
as ``python bench/naive_faust.py worker -l warn --web-port PORT`` with ``BENCH_NAIVE_*`` variables set. It
writes its progress (a JSON object) to ``BENCH_NAIVE_PROGRESS``; after ``BENCH_NAIVE_EVENTS`` events it
flushes its producer, writes the final progress and stops itself.

Only stateless pre-queue steps are supported (no quota, no post-queue workflow), as in the bench's collectors.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import faust

from streams.core.ids import input_id
from streams.core.operators.base import Candidate
from streams.core.routing import CompiledCollector
from streams.core.simulate import offline_index

BROKER = os.environ.get("BENCH_NAIVE_BROKER", "kafka://127.0.0.1:9092")
TOPIC = os.environ.get("BENCH_NAIVE_TOPIC", "predictions")
QUEUE_TOPIC = os.environ.get("BENCH_NAIVE_QUEUE", "naive-queue")
TARGET = int(os.environ.get("BENCH_NAIVE_EVENTS", "0"))
PROGRESS = Path(os.environ.get("BENCH_NAIVE_PROGRESS", "naive-progress.json"))
PROGRESS_EVERY = 1000


class Concept(faust.Record):
    id: str
    name: str
    value: float


class ModelVersion(faust.Record):
    id: str


class Model(faust.Record):
    id: str
    user_id: str
    app_id: str
    model_version: ModelVersion | None = None


class Image(faust.Record):
    url: str


class Text(faust.Record):
    raw: str


class InputData(faust.Record):
    image: Image | None = None
    text: Text | None = None
    metadata: dict[str, Any] | None = None


class Input(faust.Record):
    id: str
    data: InputData


class OutputData(faust.Record):
    concepts: list[Concept] | None = None


class Output(faust.Record):
    id: str
    model: Model
    input: Input
    data: OutputData


class Caller(faust.Record):
    user_id: str


class Event(faust.Record):
    id: str
    created_at: str
    caller: Caller
    output: Output


class QueuedData(faust.Record):
    image: Image | None
    text: Text | None
    metadata: dict[str, Any]
    concepts: list[Concept] | None = None


class QueuedInput(faust.Record):
    id: str
    data: QueuedData


class Queued(faust.Record):
    collector_id: str
    event_id: str
    input: QueuedInput


def _collectors_by_model() -> dict[tuple[str, str, str], list[CompiledCollector]]:
    """The bench's collectors, compiled, by the model they watch."""
    by_model: dict[tuple[str, str, str], list[CompiledCollector]] = {}
    for collector in offline_index(Path(os.environ["BENCH_NAIVE_CONFIG"])):
        if collector.after_queue.steps:
            raise SystemExit(f"naive_faust supports stateless pre-queue steps only, not {collector.id!r}'s")
        by_model.setdefault(collector.spec.source.model_key, []).append(collector)
    return by_model


COLLECTORS = _collectors_by_model() if "BENCH_NAIVE_CONFIG" in os.environ else {}

app = faust.App(
    os.environ.get("BENCH_NAIVE_APP_ID", "bench-naive"),
    broker=BROKER,
    datadir=os.environ.get("BENCH_NAIVE_DATA_DIR", "naive-data"),
)
predictions = app.topic(TOPIC, value_type=Event)
queue = app.topic(QUEUE_TOPIC, key_type=str, value_type=Queued)


def _plain(value: Any) -> Any:
    """A record as nested dicts and lists, as the operators read events."""
    if isinstance(value, faust.Record):
        return {name: _plain(field) for name, field in value.asdict().items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _kept(collector: CompiledCollector, event: Event, plain: dict[str, Any]) -> Candidate | None:
    """The collector's view of the event when its pre-queue steps keep it, else None."""
    version = event.output.model.model_version
    if not collector.watches(version.id if version else None, event.caller.user_id):
        return None
    candidate = Candidate.of(collector.id, plain)
    return candidate if collector.pre_queue.run(candidate) is None else None


def _queued(collector: CompiledCollector, event: Event, candidate: Candidate) -> Queued:
    output = event.output
    model = output.model
    metadata = dict(output.input.data.metadata or {})
    metadata["collector"] = {
        "id": collector.id,
        "event_id": event.id,
        "input_id": output.input.id,
        "model": f"{model.user_id}/{model.app_id}/{model.id}",
        "model_version_id": model.model_version.id if model.model_version else None,
        "created_at": event.created_at,
    }
    data = QueuedData(
        image=output.input.data.image,
        text=output.input.data.text,
        metadata=metadata,
        concepts=[Concept(id=c["id"], name=c.get("name") or c["id"], value=c["value"]) for c in candidate.concepts]
        if collector.spec.collect_outputs
        else None,
    )
    return Queued(
        collector_id=collector.id,
        event_id=event.id,
        input=QueuedInput(id=input_id(collector.id, event.id), data=data),
    )


def _write_progress(state: dict[str, Any]) -> None:
    partial = PROGRESS.with_suffix(".tmp")
    partial.write_text(json.dumps(state))
    os.replace(partial, PROGRESS)


@app.agent(predictions)
async def select(stream: faust.StreamT[Event]) -> None:
    """Decide per collector on the parsed event; send each survivor on its own."""
    state: dict[str, Any] = {"events": 0, "survivors": 0, "done": False}
    async for event in stream:
        if state["events"] == 0:
            state["first"], state["cpu_first"] = time.monotonic(), time.process_time()
        state["events"] += 1
        model = event.output.model
        watching = COLLECTORS.get((model.user_id, model.app_id, model.id), [])
        plain = _plain(event) if watching else {}
        for collector in watching:
            candidate = _kept(collector, event, plain)
            if candidate is not None:
                await queue.send(key=collector.id, value=_queued(collector, event, candidate))
                state["survivors"] += 1
        if state["events"] == TARGET:
            await app.producer.flush()
            state.update(done=True, last=time.monotonic(), cpu_last=time.process_time())
            _write_progress(state)
            os.kill(os.getpid(), signal.SIGTERM)
        elif state["events"] % PROGRESS_EVERY in (0, 1):
            _write_progress(state)


if __name__ == "__main__":
    app.main()
