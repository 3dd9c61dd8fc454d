"""End to end on the real broker: events in (aiokafka and kcat), exactly the expected inputs out."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from streams.core.ids import input_id
from streams.core.simulate import offline_index, simulate
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import wait_settled
from streams.tools.samples.generate import events
from tests.conftest import read_topic, write_config

pytestmark = pytest.mark.kafka

MODEL = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "general-image-recognition"}


def _config(tmp_path: Path, base_url: str) -> Path:
    destination = {"base_url": base_url, "user_id": "ann", "app_id": "pets", "key_env": "TEST_PETS_KEY"}
    return write_config(
        tmp_path / "collectors.yaml",
        {
            "collectors": [
                {"id": "quarter", "source": MODEL, "destination": destination, "pre_queue_random_sample": 0.25},
                {
                    "id": "bob-all",
                    "source": {**MODEL, "caller_user_id": "bob"},
                    "destination": destination,
                    "pre_queue_workflow_id": "everything",
                    "collect_outputs": True,
                },
            ],
            "workflows": [{"id": "everything", "nodes": [{"operator": "random_sample", "keep_fraction": 1.0}]}],
        },
    )


async def test_events_flow_from_kafka_to_the_destination(
    tmp_path, kafka: LocalKafka, topic_factory, producer_factory, destination_factory, worker_factory, unique
) -> None:
    destination = destination_factory()
    key = destination.add_app("ann", "pets")
    config = _config(tmp_path, destination.url)
    predictions = await topic_factory("predictions")

    lines = [orjson.dumps(e) for e in events(400, seed=11, text_share=0.1)]
    malformed = b'{"id": "evt-broken", "output": {"model": '
    kcat_event = orjson.dumps(
        {
            "id": "evt-from-kcat",
            "caller": {"user_id": "bob"},
            "output": {
                "model": {"id": "general-image-recognition", "user_id": "clarifai", "app_id": "main"},
                "input": {"data": {"image": {"url": "https://images.example.com/kcat.jpg"}}},
                "data": {"concepts": [{"id": "ai_cat", "name": "cat", "value": 0.7}]},
            },
        }
    )
    await producer_factory(predictions, [*lines, malformed])
    kcat = shutil.which("kcat")
    assert kcat, "kcat is needed (Debian package kcat; `make test` installs it)"
    subprocess.run(
        [kcat, "-P", "-b", kafka.bootstrap_servers, "-t", predictions, "-k", "evt-from-kcat"],
        input=kcat_event,
        check=True,
        timeout=30,
    )
    all_lines = [*lines, malformed, kcat_event]

    worker = worker_factory(config, env={"TEST_PETS_KEY": key})
    stats = wait_settled([worker], events=len(all_lines), timeout_s=120)

    report = await simulate(offline_index(config), all_lines)
    expected = {input_id(cid, eid) for cid, ids in report.selected.items() for eid in ids}
    assert "evt-from-kcat" in report.selected["ann/pets/bob-all"], "the kcat event is bob's; bob-all keeps all"
    stored = destination.input_ids("ann", "pets")
    assert len(stored) == len(set(stored)), "no input stored twice"
    assert set(stored) == expected
    counts = stats["events"]
    assert (counts["events"], counts["dead_lettered"], counts["decoded"]) == (402, 1, 401)
    assert counts["unmatched"] == report.ledger.events["unmatched"]
    for cid, ids in report.selected.items():
        assert stats["collectors"][cid]["posted"] == len(ids)

    # Provenance and pre-labels travel with the input.
    by_id = {item.input_id: item.data for item in destination.inputs("ann", "pets")}
    kcat_input = by_id[input_id("ann/pets/bob-all", "evt-from-kcat")]
    assert kcat_input["metadata"]["collector"]["event_id"] == "evt-from-kcat"
    assert kcat_input["concepts"][0]["id"] == "ai_cat"

    (letter,) = await read_topic(kafka.bootstrap_servers, f"{unique}-dead-letters", expect=1)
    assert letter["reason"] == "invalid_json"
    assert letter["value"] == malformed.decode()
    assert letter["source_topic"] == predictions


async def test_redelivery_cannot_duplicate(
    tmp_path, topic_factory, producer_factory, destination_factory, worker_factory, unique
) -> None:
    """A second worker group replaying the whole topic posts the same ids: the destination keeps one copy."""
    destination = destination_factory()
    key = destination.add_app("ann", "pets")
    config = _config(tmp_path, destination.url)
    predictions = await topic_factory("predictions")
    lines = [orjson.dumps(e) for e in events(150, seed=5)]
    await producer_factory(predictions, lines)

    first = worker_factory(config, env={"TEST_PETS_KEY": key})
    wait_settled([first], events=len(lines), timeout_s=120)
    stored_once = destination.input_ids("ann", "pets")
    first.stop()

    # A new consumer group with its own queue topic re-reads every prediction from the start.
    replay_env = {"TEST_PETS_KEY": key, "COLLECTORS_QUEUE_TOPIC": f"{unique}-replay-queue"}
    replay = worker_factory(config, env=replay_env, app_id=f"{unique}-replay")
    stats = wait_settled([replay], events=len(lines), timeout_s=120)
    assert sorted(destination.input_ids("ann", "pets")) == sorted(stored_once)
    duplicates = sum(c.get("duplicate", 0) for c in stats["collectors"].values())
    posted = sum(c.get("posted", 0) for c in stats["collectors"].values())
    assert (duplicates, posted) == (len(stored_once), 0)


async def test_an_event_published_twice_is_posted_once_and_counted_twice(
    tmp_path, topic_factory, producer_factory, destination_factory, worker_factory
) -> None:
    """A producer's retry puts the same prediction on the topic twice: both copies are queued with one input
    id, usually into the same request. The input goes out once; the copy is counted as a duplicate."""
    destination = destination_factory()
    key = destination.add_app("ann", "pets")
    config = _config(tmp_path, destination.url)
    predictions = await topic_factory("predictions")
    lines = [orjson.dumps(e) for e in events(200, seed=6)]
    twice = [line for line in lines for _copy in range(2)]
    await producer_factory(predictions, twice)

    worker = worker_factory(config, env={"TEST_PETS_KEY": key})
    stats = wait_settled([worker], events=len(twice), timeout_s=120)

    report = await simulate(offline_index(config), lines)
    stored = destination.input_ids("ann", "pets")
    assert len(stored) == len(set(stored))
    assert set(stored) == {input_id(cid, eid) for cid, ids in report.selected.items() for eid in ids}
    for cid, ids in report.selected.items():
        funnel = stats["collectors"][cid]
        assert (funnel["queued"], funnel["posted"], funnel["duplicate"]) == (2 * len(ids), len(ids), len(ids))
