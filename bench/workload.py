"""The benchmark's workload: generated prediction events, a collectors file, and what the worker must post."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from streams import ledger as outcome
from streams.samples.generate import GENERAL_MODEL, events
from streams.simulate import offline_index, simulate

KEY_ENV = "COLLECTORS_BENCH_KEY"
DESTINATION_USER = "bench"
DESTINATION_APP = "inputs"


def event_lines(count: int, *, seed: int) -> tuple[list[bytes], list[bytes]]:
    """``count`` generated events as JSON records, and their ids as record keys."""
    lines: list[bytes] = []
    keys: list[bytes] = []
    for event in events(count, seed=seed):
        lines.append(orjson.dumps(event))
        keys.append(event["id"].encode())
    return lines, keys


def write_collectors(path: Path, *, base_url: str, count: int = 10, seed: int = 11) -> Path:
    """``count`` collectors on the general image model, each a random sample of 5-20%; every other one
    also posts the model's concepts (``collect_outputs``)."""
    rng = random.Random(seed)
    source = {
        "model_user_id": GENERAL_MODEL["user_id"],
        "model_app_id": GENERAL_MODEL["app_id"],
        "model_id": GENERAL_MODEL["id"],
    }
    destination = {"base_url": base_url, "user_id": DESTINATION_USER, "app_id": DESTINATION_APP, "key_env": KEY_ENV}
    collectors: list[dict[str, Any]] = [
        {
            "id": f"bench-{number:02d}",
            "source": source,
            "destination": destination,
            "pre_queue_random_sample": round(rng.uniform(0.05, 0.20), 3),
            "collect_outputs": number % 2 == 0,
        }
        for number in range(count)
    ]
    path.write_text(yaml.safe_dump({"collectors": collectors}, sort_keys=False), encoding="utf-8")
    return path


@dataclass(frozen=True, slots=True)
class Expectation:
    """What ``streams.simulate`` says the worker must do with the events, and how long it took offline."""

    queued: int
    posted: int
    simulate_s: float


def expect(config: Path, lines: list[bytes]) -> Expectation:
    """Run ``streams.simulate`` (decode, validate, select, post-queue) over the events, timed."""
    index = offline_index(config)
    started = time.perf_counter()
    report = asyncio.run(simulate(index, lines))
    elapsed = time.perf_counter() - started
    queued = sum(counts[outcome.QUEUED] for counts in report.ledger.collectors.values())
    posted = sum(len(ids) for ids in report.selected.values())
    return Expectation(queued=queued, posted=posted, simulate_s=elapsed)
