"""``collectors stats``: the ledger read from the changelog topics is the workers' ledger, and it balances."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import get_json, wait_settled, worker_stats
from streams.tools.operations.commands import stats_command
from streams.tools.operations.errors import EXIT_UNREACHABLE
from streams.tools.operations.stats import LEDGER_TABLES, changelog_topic
from streams.tools.samples.generate import events
from streams.worker.membership import CHANGELOG_CONFIG

from .support import config, invoke, invoke_json

pytestmark = pytest.mark.kafka


async def _topic_config(broker: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    (resource,) = response.resources
    return {entry[0]: entry[1] for entry in resource[4]}


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

    for table in LEDGER_TABLES:  # compacted promptly: a worker taking a partition over recovers a few records
        configs = await _topic_config(kafka.bootstrap_servers, changelog_topic(unique, table))
        assert {name: configs[name] for name in CHANGELOG_CONFIG} == {k: str(v) for k, v in CHANGELOG_CONFIG.items()}

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
    assert max(map(len, table.stdout.splitlines())) <= 100

    watching = subprocess.Popen(
        [sys.executable, "-m", "streams", "stats", "--watch", "--interval", "0.2", *broker],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await asyncio.sleep(8)
    finally:
        watching.send_signal(signal.SIGINT)
        out, _ = watching.communicate(timeout=30)
    assert watching.returncode == 0
    assert out.count("ledger balances: yes") >= 2  # shown again and again until Ctrl-C


async def test_stats_of_an_app_id_that_never_ran_says_so_and_exits_1(kafka: LocalKafka, unique) -> None:
    args = ["--broker", kafka.bootstrap_servers, "--app-id", unique]
    result = await invoke(stats_command, [*args, "--json"])
    assert result.exit_code == 1, result.output
    document = orjson.loads(result.stdout)
    assert document["missing_topics"] == [f"{unique}-ledger-select-changelog", f"{unique}-ledger-post-changelog"]
    table = await invoke(stats_command, args)
    assert table.exit_code == 1
    assert table.stdout == ""
    assert f"no ledger for app id {unique!r}" in table.stderr and "--app-id" in table.stderr


async def test_stats_takes_broker_and_app_id_from_the_context_flags_and_env_first(kafka: LocalKafka, unique) -> None:
    from streams.tools.config_commands import config as config_group

    made = await invoke(
        config_group, ["set-context", "local", "--broker", kafka.bootstrap_servers, "--app-id", f"{unique}-ctx"]
    )
    assert made.exit_code == 0, made.output
    from_context = await invoke(stats_command, [])
    assert f"no ledger for app id '{unique}-ctx' at {kafka.bootstrap_servers}" in from_context.stderr
    from_env = await invoke(stats_command, [], env={"COLLECTORS_APP_ID": f"{unique}-env"})
    assert f"'{unique}-env'" in from_env.stderr
    from_flag = await invoke(stats_command, ["--app-id", f"{unique}-flag"], env={"COLLECTORS_APP_ID": "x"})
    assert f"'{unique}-flag'" in from_flag.stderr


async def test_unreachable_kafka_and_worker_exit_4() -> None:
    result = await invoke(stats_command, ["--broker", "kafka://127.0.0.1:1"])
    assert result.exit_code == EXIT_UNREACHABLE, result.output
    assert "cannot reach Kafka at 127.0.0.1:1" in result.output
    result = await invoke(stats_command, ["--worker", "http://127.0.0.1:1"])
    assert result.exit_code == EXIT_UNREACHABLE, result.output
