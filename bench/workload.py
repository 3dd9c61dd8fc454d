"""The benchmark's workload: generated prediction events, collectors files, and what the worker must post.

The 10 collectors of the pipeline run realistic pre-queue workflows (random samples, probability thresholds,
metadata filters, a concept map onto a pets model, concept thresholds) on the general image model. The
scaling run gives the same 10 workflows to 10 collectors on each of 100 models (1,000 collectors), and
spreads the general model's events over those models, so each event still meets 10 collectors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from streams.core import ledger as outcome
from streams.core.ledger import Ledger
from streams.core.selection import select
from streams.core.simulate import offline_index, simulate
from streams.tools.samples.generate import GENERAL_MODEL, events

KEY_ENV = "COLLECTORS_BENCH_KEY"
DESTINATION_USER = "bench"
DESTINATION_APP = "inputs"
COLLECTORS_PER_MODEL = 10
SCALING_MODELS = 100

PETS_GRAPH = [
    {"subject": "dog", "predicate": "synonym", "object": "pet-dog"},
    {"subject": "cat", "predicate": "synonym", "object": "pet-cat"},
    {"subject": "ai_bird", "predicate": "hyponym", "object": "pet-bird"},
    {"subject": "horse", "predicate": "hyponym", "object": "farm-animal"},
    {"subject": "dog", "predicate": "hyponym", "object": "animal"},
]
VEHICLES_GRAPH = [
    {"subject": name, "predicate": "hyponym", "object": "vehicle"}
    for name in ("car", "truck", "bus", "motorcycle", "bicycle", "train", "boat")
]
WORKFLOWS: list[dict[str, Any]] = [
    {
        "id": "uncertain",
        "description": "Uncertain predictions, 30% of them.",
        "nodes": [
            {"operator": "max_probability_below", "threshold": 0.6},
            {"operator": "random_sample", "keep_fraction": 0.3},
        ],
    },
    {
        "id": "confident-gates",
        "description": "Confident predictions from the gate cameras.",
        "nodes": [
            {"operator": "metadata_filter", "match": {"camera": {"in": ["north-gate", "south-gate"]}}},
            {"operator": "min_probability_above", "threshold": 0.85},
            {"operator": "random_sample", "keep_fraction": 0.5},
        ],
    },
    {
        "id": "uncertain-pets",
        "description": "Pets, mapped onto a pets model, when the model hesitated.",
        "nodes": [
            {"operator": "random_sample", "keep_fraction": 0.4},
            {"operator": "concept_map", "graph": PETS_GRAPH, "target_concepts": ["pet-dog", "pet-cat", "pet-bird"]},
            {"operator": "max_probability_below", "threshold": 0.5},
        ],
    },
    {
        "id": "vehicles-night",
        "description": "Vehicles seen at night, mapped onto one concept.",
        "nodes": [
            {"operator": "metadata_filter", "match": {"shift": "night", "frame": {"gte": 0}}},
            {"operator": "concept_map", "graph": VEHICLES_GRAPH, "target_concepts": ["vehicle"], "follow": ["hyponym"]},
            {"operator": "random_sample", "keep_fraction": 0.3},
        ],
    },
    {
        "id": "strong-outdoor",
        "description": "Strong outdoor concepts, narrowed to them.",
        "nodes": [
            {
                "operator": "concept_threshold",
                "concepts": {"sky": 0.3, "ai_tree": 0.3, "grass": 0.3, "water": 0.4, "*": 0.9},
            },
            {"operator": "random_sample", "keep_fraction": 0.25},
        ],
    },
    {
        "id": "lobby-people",
        "description": "People in the lobby, not tests.",
        "nodes": [
            {"operator": "metadata_filter", "match": {"camera": "lobby", "test": {"exists": False}}},
            {"operator": "concept_threshold", "comparator": "GREATER_THAN", "concepts": {"person": 0.1}},
        ],
    },
    {
        "id": "sample",
        "description": "A plain 10% sample.",
        "nodes": [{"operator": "random_sample", "keep_fraction": 0.1}],
    },
    {
        "id": "day-mid-confidence",
        "description": "Day shift, top concept between 0.5 and 0.8.",
        "nodes": [
            {"operator": "metadata_filter", "match": {"shift": {"ne": "night"}}},
            {"operator": "min_probability_above", "threshold": 0.5},
            {"operator": "max_probability_below", "threshold": 0.8},
            {"operator": "random_sample", "keep_fraction": 0.4},
        ],
    },
    {
        "id": "parking-cars",
        "description": "Cars or trucks in the parking lot.",
        "nodes": [
            {"operator": "metadata_filter", "match": {"camera": "parking"}},
            {"operator": "concept_threshold", "concepts": {"car": 0.05, "truck": 0.05}},
        ],
    },
    {
        "id": "rare-animals",
        "description": "Animals, sampled, then mapped.",
        "nodes": [
            {"operator": "random_sample", "keep_fraction": 0.5},
            {"operator": "concept_map", "graph": PETS_GRAPH, "target_concepts": ["farm-animal", "animal"]},
        ],
    },
]


def model_for(index: int) -> dict[str, Any]:
    """Model number ``index`` of the scaling run: the general model's owner and version, its own id."""
    return {**GENERAL_MODEL, "id": f"model-{index:03d}"}


def spread(event: dict[str, Any], models: int) -> dict[str, Any]:
    """Move a general-model event onto one of ``models`` models (by its frame number); others unchanged."""
    model = event["output"]["model"]
    if models > 1 and model["id"] == GENERAL_MODEL["id"]:
        event["output"]["model"] = model_for(event["output"]["input"]["data"]["metadata"]["frame"] % models)
    return event


def event_lines(count: int, *, seed: int, models: int = 1, text_share: float = 0.2) -> tuple[list[bytes], list[bytes]]:
    """``count`` generated events as JSON records (general-model events spread over ``models`` models),
    and their ids as record keys."""
    lines: list[bytes] = []
    keys: list[bytes] = []
    for event in events(count, seed=seed, text_share=text_share):
        lines.append(orjson.dumps(spread(event, models)))
        keys.append(event["id"].encode())
    return lines, keys


def event_pool(count: int, *, seed: int) -> list[dict[str, Any]]:
    """Events to produce again and again with fresh ids (the paced producers)."""
    return list(events(count, seed=seed))


def _destination(base_url: str) -> dict[str, str]:
    return {"base_url": base_url, "user_id": DESTINATION_USER, "app_id": DESTINATION_APP, "key_env": KEY_ENV}


def _source(model: dict[str, Any]) -> dict[str, str]:
    return {"model_user_id": model["user_id"], "model_app_id": model["app_id"], "model_id": model["id"]}


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def write_collectors(path: Path, *, base_url: str, models: int = 1) -> Path:
    """10 collectors per model, collector ``j`` running workflow ``j``; every other one also posts the
    (narrowed) concepts. One model: the general model; more: ``model-000``... (the scaling run)."""
    watched = [GENERAL_MODEL] if models == 1 else [model_for(k) for k in range(models)]
    collectors = [
        {
            "id": f"bench-{workflow['id']}" if models == 1 else f"m{k:03d}-{workflow['id']}",
            "source": _source(model),
            "destination": _destination(base_url),
            "pre_queue_workflow_id": workflow["id"],
            "collect_outputs": number % 2 == 0,
        }
        for k, model in enumerate(watched)
        for number, workflow in enumerate(WORKFLOWS[:COLLECTORS_PER_MODEL])
    ]
    return _write(path, {"collectors": collectors, "workflows": WORKFLOWS})


def write_sampler(path: Path, *, base_url: str) -> Path:
    """One collector keeping every event of the general model (the posting measurement)."""
    collector = {
        "id": "bench-everything",
        "source": _source(GENERAL_MODEL),
        "destination": _destination(base_url),
        "pre_queue_random_sample": 1.0,
    }
    return _write(path, {"collectors": [collector]})


@dataclass(frozen=True, slots=True)
class Expectation:
    """What ``streams.core.simulate`` says the worker must do with the events, and how long it took offline."""

    queued: int
    posted: int
    simulate_s: float


def expect(config: Path, lines: list[bytes]) -> Expectation:
    """Run ``streams.core.simulate`` (decode, validate, select, post-queue) over the events, timed."""
    index = offline_index(config)
    started = time.perf_counter()
    report = asyncio.run(simulate(index, lines))
    elapsed = time.perf_counter() - started
    queued = sum(counts[outcome.QUEUED] for counts in report.ledger.collectors.values())
    posted = sum(len(ids) for ids in report.selected.values())
    return Expectation(queued=queued, posted=posted, simulate_s=elapsed)


def queue_lines(config: Path, lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """The queue records the worker's selection makes of these events (values, and collector ids as keys):
    what the posting agent reads."""
    index = offline_index(config)
    values: list[bytes] = []
    keys: list[bytes] = []
    for line in lines:
        queued, _rejected = select(orjson.loads(line), index, Ledger())
        for collector, record in queued:
            values.append(orjson.dumps(record))
            keys.append(collector.id.encode())
    return values, keys


def fresh(pool: list[dict[str, Any]], prefix: str) -> Iterator[dict[str, Any]]:
    """The pool's events over and over, each with a new id ``prefix-NNNNNNNN`` (modified in place)."""
    number = 0
    while True:
        for event in pool:
            event["id"] = f"{prefix}-{number:08d}"
            number += 1
            yield event
