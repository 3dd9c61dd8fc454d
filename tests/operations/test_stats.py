"""``collectors stats``: the ledger read from the changelog topics is the workers' ledger, and it balances."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import get_json, wait_settled, worker_stats
from streams.tools.operations.commands import stats_command
from streams.tools.operations.errors import EXIT_UNREACHABLE
from streams.tools.samples.generate import events

from .support import config, invoke, invoke_json

pytestmark = pytest.mark.kafka


async def test_stats_from_changelogs_equal_the_workers_endpoint(
    tmp_path, kafka: LocalKafka, topic_factory, producer_factory, destination_factory, worker_factory, unique
) -> None:
    destination = destination_factory()
    key = destination.add_app("ann", "pets")
    predictions = await topic_factory("predictions")
    await topic_factory("queue")  # exists before the worker subscribes to it
    lines = [orjson.dumps(e) for e in events(300, seed=3)] + [b"not json"]
    await producer_factory(predictions, lines)
    worker = worker_factory(config(tmp_path / "collectors.yaml", destination.url), env={"TEST_PETS_KEY": key})
    settled = wait_settled([worker], events=len(lines), timeout_s=120)

    broker = ["--broker", kafka.bootstrap_servers, "--app-id", unique]
    from_kafka: dict[str, object] = {}
    for _ in range(50):  # the changelog holds each batch's ledger once the producer flushed it
        from_kafka = await invoke_json(stats_command, broker)
        if {k: from_kafka[k] for k in ("events", "totals", "collectors")} == settled:
            break
        await asyncio.sleep(0.2)
    assert {k: from_kafka[k] for k in ("events", "totals", "collectors")} == settled
    assert from_kafka["missing_topics"] == []
    assert (from_kafka["balanced"], from_kafka["pending"], from_kafka["problems"]) == (True, 0, [])
    assert settled["events"]["events"] == len(lines)
    assert sum(c.get("posted", 0) for c in settled["collectors"].values()) == len(destination.input_ids("ann", "pets"))

    from_worker = await invoke_json(stats_command, ["--worker", worker.url])
    assert {k: from_worker[k] for k in ("events", "totals", "collectors")} == settled
    tasks = get_json(f"{worker.url}/collectors/tasks/")["tasks"]  # where each task waits, for a stuck worker
    chains = [task["at"] for task in tasks if any("faust_consumer.py" in frame for frame in task["at"])]
    deepest = chains[0][-1] if chains else ""
    assert "faust_private.py:" in deepest and deepest.endswith(" drain_messages"), tasks  # into the drain loop
    summary = worker_stats(worker, funnels=False)
    assert "collectors" not in summary
    assert (summary["events"], summary["totals"], summary["pending"]) == (settled["events"], settled["totals"], 0)

    # Workers stopped: the changelog still holds the ledger.
    worker.stop()
    again = await invoke_json(stats_command, broker)
    assert {k: again[k] for k in ("events", "totals", "collectors")} == settled

    table = await invoke(stats_command, broker)
    assert table.exit_code == 0, table.output
    assert "ann/pets/quarter" in table.stdout
    assert f"events: {len(lines)} = decoded {len(lines) - 1} + dead-lettered 1" in table.stdout
    assert "ledger balances: yes" in table.stdout


async def test_stats_of_an_app_id_that_never_ran(kafka: LocalKafka, unique) -> None:
    document = await invoke_json(stats_command, ["--broker", kafka.bootstrap_servers, "--app-id", unique])
    assert document["missing_topics"] == [f"{unique}-ledger-select-changelog", f"{unique}-ledger-post-changelog"]
    assert (document["collectors"], document["balanced"]) == ({}, True)


async def test_unreachable_kafka_and_worker_exit_4() -> None:
    result = await invoke(stats_command, ["--broker", "kafka://127.0.0.1:1"])
    assert result.exit_code == EXIT_UNREACHABLE, result.output
    assert "cannot reach Kafka at 127.0.0.1:1" in result.output
    result = await invoke(stats_command, ["--worker", "http://127.0.0.1:1"])
    assert result.exit_code == EXIT_UNREACHABLE, result.output
