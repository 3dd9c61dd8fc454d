"""Model nodes in a real worker on the real broker: a model that is down makes inputs wait (nothing lost,
nothing twice), and ``novelty_above`` remembers across a worker restart (its memory is a Faust table)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.core.ids import input_id
from streams.tools.localstack import Service, free_port, get_json, start_model, wait_settled, worker_stats
from tests.conftest import write_config
from tests.models.support import text_event

pytestmark = pytest.mark.kafka

TEXT = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "sentiment-analysis"}
CID = "ann/notes/second-opinion"


def _document(base_url: str, model_url: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    destination = {"base_url": base_url, "user_id": "ann", "app_id": "notes", "key_env": "TEST_NOTES_KEY"}
    model = {"operator": "model", "protocol": "open_inference", "url": model_url, "model_id": "reference"}
    return {
        "collectors": [
            {"id": "second-opinion", "source": TEXT, "destination": destination, "post_queue_workflow_id": "w"}
        ],
        "workflows": [{"id": "w", "nodes": [{**model, "use_as_labels": True}, *nodes]}],
    }


def _event(event_id: str, text: str) -> bytes:
    return orjson.dumps(text_event(event_id, text, model_id=TEXT["model_id"]))


def _distinct(i: int) -> str:
    """Texts with no word in common (the model reads letters only): their embeddings are far apart."""
    code = "".join(chr(ord("a") + int(digit)) for digit in str(i))
    return f"alpha{code} beta{code} gamma{code} delta{code}"


async def _model_down(
    tmp_path: Path, topic_factory, producer_factory, destination_factory
) -> tuple[Any, int, list[bytes], Callable[[Any], Service]]:
    """300 events on 2 partitions for a collector whose model (at the port returned) is not started yet; the
    destination, the port, the events, and how to start a worker."""
    destination = destination_factory()
    key = destination.add_app("ann", "notes")
    port = free_port()
    config = write_config(tmp_path / "c.yaml", _document(destination.url, f"http://127.0.0.1:{port}", []))
    predictions = await topic_factory("predictions", partitions=2)
    lines = [_event(f"e{i}", f"a great dog number {i}") for i in range(300)]
    await producer_factory(predictions, lines)
    env = {"TEST_NOTES_KEY": key, "COLLECTORS_PARTITIONS": "2"}
    return destination, port, lines, lambda worker_factory: worker_factory(config, env=env)


async def test_a_down_model_makes_inputs_wait_then_all_are_delivered_once(
    tmp_path: Path, topic_factory, producer_factory, destination_factory, worker_factory
) -> None:
    destination, port, lines, start = await _model_down(tmp_path, topic_factory, producer_factory, destination_factory)
    worker = start(worker_factory)

    down_until = time.monotonic() + 30
    waited = False
    while time.monotonic() < down_until:  # the model is down for 30 s: nothing posted, inputs wait
        stats = worker_stats(worker, funnels=False)
        assert stats["totals"].get("posted", 0) == 0
        waited = waited or stats["models"]["waiting"] > 0
        time.sleep(1)
    assert waited and stats["models"]["retries"] > 0
    model = start_model(log=tmp_path / "model.log", port=port)
    try:
        settled = wait_settled([worker], events=len(lines), timeout_s=180)
    finally:
        model.stop()

    stored = destination.input_ids("ann", "notes")
    assert sorted(stored) == sorted(input_id(CID, f"e{i}") for i in range(len(lines))), "each input exactly once"
    funnel = settled["collectors"][CID]
    assert funnel["queued"] == funnel["posted"] == len(lines) and settled["totals"]["posted"] == len(lines)
    labels = {c["id"] for item in destination.inputs("ann", "notes") for c in item.data.get("concepts", [])}
    assert "animal" in labels and "positive" in labels, "the model's concepts became the labels"


async def test_a_worker_joining_while_the_model_is_down_is_not_held_up(
    tmp_path: Path, topic_factory, producer_factory, destination_factory, worker_factory
) -> None:
    """Batches waiting on a down model are abandoned when a rebalance begins (read again after it), as requests
    to a slow destination are: the group does not wait for the model."""
    destination, port, lines, start = await _model_down(tmp_path, topic_factory, producer_factory, destination_factory)
    first = start(worker_factory)
    deadline = time.monotonic() + 60
    while not worker_stats(first, funnels=False)["models"]["waiting"]:  # its batches wait on the model
        assert time.monotonic() < deadline, "no input waited on the model"
        time.sleep(0.5)

    second = start(worker_factory)
    joined_by = time.monotonic() + 45
    while not all(_holds(worker, 2) for worker in (first, second)):  # 2 partitions each: predictions, queue
        assert time.monotonic() < joined_by, "the rebalance waited on the model"
        time.sleep(0.5)
    assert worker_stats(first, funnels=False)["totals"].get("posted", 0) == 0

    model = start_model(log=tmp_path / "model.log", port=port)
    try:
        wait_settled([first, second], events=len(lines), timeout_s=180)
    finally:
        model.stop()
    stored = destination.input_ids("ann", "notes")
    assert sorted(stored) == sorted(input_id(CID, f"e{i}") for i in range(len(lines))), "each input exactly once"


def _holds(worker: Service, partitions: int) -> bool:
    state = get_json(f"{worker.url}/collectors/group/")
    return bool(state["partitions"] == partitions and not state["rebalancing"])


async def test_novelty_remembers_across_a_worker_restart(
    tmp_path: Path, topic_factory, producer_factory, destination_factory, worker_factory
) -> None:
    destination = destination_factory()
    key = destination.add_app("ann", "notes")
    model = start_model(log=tmp_path / "model.log")
    try:
        novelty = {"operator": "novelty_above", "min_distance": 0.05, "memory": 100}
        config = write_config(tmp_path / "c.yaml", _document(destination.url, model.url, [novelty]))
        predictions = await topic_factory("predictions", partitions=1)
        env = {"TEST_NOTES_KEY": key, "COLLECTORS_PARTITIONS": "1"}
        first = [_event(f"a{i}", _distinct(i)) for i in range(20)]
        await producer_factory(predictions, first)
        worker = worker_factory(config, env=env)
        wait_settled([worker], events=len(first), timeout_s=120)
        assert worker_stats(worker)["collectors"][CID]["posted"] == 20, "distinct texts are all new"
        worker.stop()

        # The same texts again, and five new ones, read by a new worker process with a new data directory.
        second = [_event(f"b{i}", _distinct(i)) for i in range(20)] + [
            _event(f"n{i}", _distinct(100 + i)) for i in range(5)
        ]
        await producer_factory(predictions, second)
        restarted = worker_factory(config, env=env)
        # The ledger is recovered too: it counts both batches.
        settled = wait_settled([restarted], events=len(first) + len(second), timeout_s=120)
    finally:
        model.stop()
    funnel = settled["collectors"][CID]
    assert funnel["post_out:w/1:novelty_above"] == 20, "the texts seen before the restart are not new"
    assert funnel["posted"] == 20 + 5
    stored = set(destination.input_ids("ann", "notes"))
    assert {input_id(CID, f"n{i}") for i in range(5)} <= stored
    assert not {input_id(CID, f"b{i}") for i in range(20)} & stored
