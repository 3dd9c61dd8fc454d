"""What every fault-injection test checks at the end: the destination holds exactly the expected ids,
once each, and the ledger balances."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from streams.core import ledger as outcome
from streams.core.ids import input_id
from streams.core.simulate import offline_index, simulate
from streams.tools.localstack import Service, combined_ledger
from streams.tools.samples.generate import events
from tests.conftest import Destination, write_config

MODEL = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "general-image-recognition"}
SLOW_POSTING = {"COLLECTORS_POST_BATCH_SIZE": "16", "COLLECTORS_RETRY_MAX_BACKOFF_S": "1"}


def fault_config(tmp_path: Path, base_url: str) -> Path:
    destination = {"base_url": base_url, "user_id": "ann", "app_id": "pets", "key_env": "TEST_PETS_KEY"}
    return write_config(
        tmp_path / "collectors.yaml",
        {
            "collectors": [
                {"id": "half", "source": MODEL, "destination": destination, "pre_queue_random_sample": 0.5},
                {"id": "tenth", "source": MODEL, "destination": destination, "pre_queue_random_sample": 0.1},
            ]
        },
    )


def event_lines(count: int, seed: int = 31) -> list[bytes]:
    return [orjson.dumps(e) for e in events(count, seed=seed, text_share=0.0)]


async def expected_ids(config: Path, lines: list[bytes]) -> set[str]:
    report = await simulate(offline_index(config), lines)
    return {input_id(cid, eid) for cid, ids in report.selected.items() for eid in ids}


async def set_faults(destination: Destination, **config: Any) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{destination.url}/_faults", json=config) as answer:
        assert answer.status == 200, await answer.text()


def wait_for(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def posted_so_far(workers: list[Service]) -> int:
    return int(combined_ledger(workers, funnels=False).totals.get(outcome.POSTED, 0))


def assert_exactly_once(destination: Destination, expected: set[str]) -> None:
    stored = destination.input_ids("ann", "pets")
    assert len(stored) == len(set(stored)), "an input was stored twice"
    assert set(stored) == expected, f"missing {len(expected - set(stored))}, unexpected {len(set(stored) - expected)}"


def assert_balanced(snapshot: dict[str, Any], events_in: int) -> None:
    """Events in = the sum of their outcomes; every queue record has exactly one outcome."""
    assert_events_balanced(snapshot, events_in)
    for cid, funnel in snapshot["collectors"].items():
        records = funnel.get("queued", 0) + funnel.get("requeued", 0)
        done = sum(funnel.get(k, 0) for k in ("posted", "duplicate", "dead_lettered", "dropped"))
        done += sum(n for k, n in funnel.items() if k.startswith(outcome.POST_FILTERED_PREFIX))
        assert records == done, f"{cid}: {records} queue records, {done} outcomes: {funnel}"


def assert_events_balanced(snapshot: dict[str, Any], events_in: int) -> None:
    """Every event read is counted once, and each collector's share of it ends in exactly one outcome."""
    counts = snapshot["events"]
    assert counts.get("events", 0) == events_in
    assert counts.get("events", 0) == counts.get("decoded", 0) + counts.get("dead_lettered", 0)
    for cid, funnel in snapshot["collectors"].items():
        judged = funnel.get("paused", 0) + funnel.get("operator_errors", 0) + funnel.get("queued", 0)
        judged += sum(n for k, n in funnel.items() if k.startswith(outcome.FILTERED_PREFIX))
        assert funnel.get("seen", 0) == judged, f"{cid}: seen {funnel.get('seen')} != its outcomes {judged}"


@pytest.fixture
def faulty_destination(destination_factory: Callable[..., Destination]) -> tuple[Destination, str]:
    destination = destination_factory(faults=True)
    return destination, destination.add_app("ann", "pets")
