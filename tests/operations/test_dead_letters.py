"""``collectors dlq list`` and ``dlq replay`` on letters a real worker wrote: a malformed event, and every input
of collectors whose key the destination refused (11007); replayed once the key is fixed, exactly once."""

from __future__ import annotations

import orjson
import pytest

from schemas.management import collector_key
from streams.core.ids import input_id
from streams.core.simulate import offline_index, simulate
from streams.kafka.control_topic import ControlWriter
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import wait_settled
from streams.tools.operations.commands import dlq
from streams.tools.operations.errors import EXIT_REFUSED, EXIT_USAGE
from streams.tools.samples.generate import events

from .support import MODEL, config, invoke, invoke_json

pytestmark = pytest.mark.kafka

QUARTER, BOB = "ann/pets/quarter", "ann/pets/bob-all"


async def test_list_then_replay_after_the_key_is_fixed(
    tmp_path, kafka: LocalKafka, topic_factory, producer_factory, destination_factory, worker_factory, unique
) -> None:
    destination = destination_factory()
    list_only = destination.add_app("ann", "pets", scopes=("ListInputs",))
    predictions = await topic_factory("predictions")
    await topic_factory("queue")  # exists before the worker subscribes to it
    lines = [orjson.dumps(e) for e in events(200, seed=7)] + [b'{"id": "evt-broken", "output": ']
    await producer_factory(predictions, lines)
    collectors = config(tmp_path / "collectors.yaml", destination.url)
    worker = worker_factory(collectors, env={"TEST_PETS_KEY": list_only})
    stats = wait_settled([worker], events=len(lines), timeout_s=120)
    report = await simulate(offline_index(collectors), lines)
    expected = {cid: {input_id(cid, eid) for eid in ids} for cid, ids in report.selected.items()}
    assert all(expected.values())
    assert {cid: c.get("dead_lettered", 0) for cid, c in stats["collectors"].items()} == {
        cid: len(ids) for cid, ids in expected.items()
    }
    assert destination.input_ids("ann", "pets") == []

    letters = ["--broker", kafka.bootstrap_servers, "--topic", f"{unique}-dead-letters"]
    listed = await invoke_json(dlq, ["list", *letters])
    counts = {(g["collector_id"], g["reason"], g["replayable"]): g["count"] for g in listed["groups"]}
    assert counts.pop(("-", "invalid_json", False)) == 1
    assert {key[2] for key in counts} == {True}, "the refused key's inputs are replayable"
    assert {key[1] for key in counts} <= {"auth", "collector_paused"}
    for cid, ids in expected.items():
        assert sum(n for key, n in counts.items() if key[0] == cid) == len(ids)
    assert listed["total"] == 1 + sum(len(ids) for ids in expected.values())
    table = await invoke(dlq, ["list", *letters])
    assert "invalid_json" in table.stdout and QUARTER in table.stdout

    fixed = {"TEST_PETS_KEY": destination.add_app("ann", "pets")}
    replay = ["replay", *letters, "--config", str(collectors), "--control-topic", f"{unique}-control"]
    dry = await invoke(dlq, [*replay, "--collector", "quarter", "--dry-run"], fixed)
    assert dry.exit_code == 0, dry.output
    assert f"{QUARTER}: {len(expected[QUARTER])} inputs to replay" in dry.stdout
    assert destination.input_ids("ann", "pets") == []

    first = await invoke(dlq, [*replay, "--collector", "quarter"], fixed)
    assert first.exit_code == 0, first.output
    assert f"{QUARTER}: posted {len(expected[QUARTER])}, duplicates 0, failed 0" in first.stdout
    count = len(expected[QUARTER])
    assert f"replaying: {count}/{count} (100%)" in first.stderr  # progress lines, not on a terminal
    assert set(destination.input_ids("ann", "pets")) == expected[QUARTER]

    everything = await invoke(dlq, replay, fixed)
    assert everything.exit_code == 0, everything.output
    assert f"{QUARTER}: posted 0, duplicates {len(expected[QUARTER])}, failed 0" in everything.stdout
    assert f"{BOB}: posted {len(expected[BOB])}, duplicates 0, failed 0" in everything.stdout
    stored = destination.input_ids("ann", "pets")
    assert len(stored) == len(set(stored)) and set(stored) == expected[QUARTER] | expected[BOB]

    again = await invoke(dlq, replay, fixed)
    assert again.exit_code == 0, again.output
    for cid, ids in expected.items():
        assert f"{cid}: posted 0, duplicates {len(ids)}, failed 0" in again.stdout
    assert sorted(destination.input_ids("ann", "pets")) == sorted(stored)


async def test_replay_refuses_a_collector_paused_by_a_key_error(kafka: LocalKafka, unique) -> None:
    control = f"{unique}-control"
    writer = ControlWriter(kafka.bootstrap_servers, control)
    await writer.start()
    collector = {
        "id": "cats",
        "source": MODEL,
        "destination": {"base_url": "http://127.0.0.1:1", "user_id": "ann", "app_id": "pets", "key": "revoked-key"},
        "pre_queue_random_sample": 0.5,
        "status": "paused",
    }
    document = {
        "kind": "collector",
        "user_id": "ann",
        "app_id": "pets",
        "collector": collector,
        "created_at": "2026-11-27T10:00:00Z",
        "modified_at": "2026-11-27T10:00:00Z",
        "last_error": "the destination refused the key revo…: 11008 key invalid",
    }
    try:
        await writer.put(collector_key("ann", "pets", "cats"), document)
    finally:
        await writer.stop()
    replay = ["replay", "--broker", kafka.bootstrap_servers, "--topic", f"{unique}-dead-letters"]
    replay += ["--control-topic", control]

    refused = await invoke(dlq, [*replay, "--collector", "cats"])
    assert refused.exit_code == EXIT_REFUSED, refused.output
    assert "ann/pets/cats is paused: the destination refused the key" in refused.output
    assert "resume it" in refused.output

    forced = await invoke(dlq, [*replay, "--collector", "ann/pets/cats", "--force"])
    assert forced.exit_code == 0, forced.output
    assert "nothing to replay" in forced.stdout

    unknown = await invoke(dlq, [*replay, "--collector", "dogs"])
    assert unknown.exit_code == EXIT_USAGE, unknown.output
    assert "no collector 'dogs'; known collectors: ann/pets/cats" in unknown.output
