"""The sweep: a full run (the management API, two workers and the destination at DEBUG, a key revoked mid-run,
a replay) with known keys; then every topic's raw bytes, every log file, the destination's database, the
workers' pages and the output of every command used are searched for the keys. None is found."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.services.destination.store import Store
from streams.tools.cli import main
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import Service, start_destination, wait_settled
from tests.conftest import Destination, write_config
from tests.e2e.management_support import (
    APP,
    MODEL,
    USER,
    ControlApis,
    empty_config,
    event_lines,
    funnel,
    invoke,
    new_key,
    revoke,
    wait_listed,
)
from tests.faults.conftest import wait_for
from tests.security.support import files_bytes, leaks, topics_bytes

pytestmark = pytest.mark.kafka

WORKER_PAGES = (
    "/collectors/stats/",
    "/collectors/list/",
    "/collectors/partitions/",
    "/collectors/tasks/",
    "/collectors/group/",
    "/metrics",
    "/readyz",
)
API_PAGES = ("/metrics", "/readyz", "/funnel", "/")


@pytest.fixture
def control_apis(kafka: LocalKafka, unique: str, tmp_path: Path) -> Iterator[ControlApis]:
    apis = ControlApis(kafka, unique, tmp_path)
    yield apis
    apis.stop_all()


@pytest.fixture
def debug_destination(tmp_path: Path) -> Iterator[Destination]:
    db = tmp_path / "destination.db"
    Store(db).close()
    service = start_destination(db, log=tmp_path / "destination.log", log_level="debug")
    yield Destination(service, db)
    service.stop()


def collectors_file(path: Path, base_url: str, **key_envs: str) -> Path:
    """A collectors file naming its keys by environment variable (``alpha=NAME``, ...)."""
    collectors: list[dict[str, Any]] = [
        {
            "id": name,
            "source": MODEL,
            "destination": {"base_url": base_url, "user_id": USER, "app_id": APP, "key_env": env},
            "pre_queue_random_sample": 0.5,
        }
        for name, env in key_envs.items()
    ]
    return write_config(path, {"collectors": collectors})


async def test_no_key_in_clear_anywhere_after_a_full_run(
    tmp_path: Path,
    kafka: LocalKafka,
    unique: str,
    topic_factory,
    producer_factory,
    worker_factory,
    control_apis: ControlApis,
    debug_destination: Destination,
) -> None:
    destination = debug_destination
    owner = new_key(destination, "ownr", app_id=None)
    one, two, three = new_key(destination, "kone"), new_key(destination, "ktwo"), new_key(destination, "kthr")
    running = control_apis.start(destination, "--log-level", "debug")
    predictions = await topic_factory("predictions")
    env = {"COLLECTORS_LOG_LEVEL": "debug", "COLLECTORS_ALLOWED_DESTINATIONS": destination.url}
    workers: list[Service] = [worker_factory(empty_config(tmp_path), env=env) for _ in range(2)]
    outputs: dict[str, bytes] = {}
    broker = ["--broker", kafka.bootstrap_servers]
    dead_letters = f"{unique}-dead-letters"

    async def cli(name: str, args: list[str], key: str = owner, **extra: str) -> str:
        result = await invoke(main, args, running.cli_env(key, **extra))
        outputs[name] = result.output.encode()
        return result.output

    both = collectors_file(tmp_path / "sweep.yaml", destination.url, alpha="SWEEP_ONE", beta="SWEEP_TWO")
    await cli("create", ["create", "-f", str(both)], SWEEP_ONE=one, SWEEP_TWO=two)
    ids = {f"{USER}/{APP}/alpha", f"{USER}/{APP}/beta"}
    wait_listed(workers, lambda state: ids <= set(state), timeout_s=30, what="both collectors")

    batch1 = event_lines(600, start=1, seed=95)
    await producer_factory(predictions, batch1)
    wait_settled(workers, events=len(batch1), timeout_s=90)

    # beta's key revoked: the workers pause it, what it queues waits in the dead-letter topic.
    revoke(destination, two)
    batch2 = event_lines(300, start=2001, seed=96)
    await producer_factory(predictions, batch2)

    wait_for(lambda: _beta_status(running.url, owner) != 52001, timeout_s=60, what="beta paused by a worker")
    snapshot = wait_settled(workers, events=len(batch1) + len(batch2), timeout_s=90)
    assert funnel(snapshot, f"{USER}/{APP}/beta").get("dead_lettered", 0) > 0, snapshot

    # A new key for beta, active again, and the replay of what waited.
    fixed = collectors_file(tmp_path / "fixed.yaml", destination.url, beta="SWEEP_THREE")
    await cli("patch", ["patch", "-f", str(fixed)], SWEEP_THREE=three)
    await cli("resume", ["resume", "beta"])
    wait_listed(
        workers,
        lambda state: state[f"{USER}/{APP}/beta"]["status"] == "active",
        timeout_s=30,
        what="beta active on every worker",
    )
    replay = ["dlq", "replay", *broker, "--topic", dead_letters, "--control-topic", running.topic]
    replayed = await cli("dlq-replay", [*replay, "--collector", f"{USER}/{APP}/beta"])
    assert "posted" in replayed, replayed

    # Every reading command, and a command that fails with a revoked key.
    await cli("list", ["list"])
    await cli("list-json", ["list", "--json"])
    await cli("get-alpha", ["get", "alpha", "--json"])
    await cli("get-beta", ["get", "beta"])
    await cli("stats", ["stats", *broker, "--app-id", unique])
    await cli("dlq-list", ["dlq", "list", *broker, "--topic", dead_letters])
    refused = await cli("list-revoked-key", ["list"], key=two)
    assert "unknown or revoked" in refused, refused
    topics = await topics_bytes(kafka.bootstrap_servers, unique)
    for topic in topics:
        await cli(f"tail-{topic}", ["tail", topic, *broker, "--from-beginning", "--idle-exit", "2"])
        await cli(f"tail-json-{topic}", ["tail", topic, *broker, "--from-beginning", "--idle-exit", "2", "--json"])
    assert_loopback_only(workers)
    pages = {f"{worker.url}{page}": _read(f"{worker.url}{page}") for worker in workers for page in WORKER_PAGES}
    pages |= {f"{running.url}{page}": _read(f"{running.url}{page}") for page in API_PAGES}
    for worker in workers:
        worker.stop()
    running.service.stop()
    destination.service.stop()

    logs = files_bytes(tmp_path, ["*.log"])
    database = files_bytes(tmp_path, ["destination.db*"])
    # What was searched holds what a leak would be in: the records, the DEBUG lines, the keys' digests.
    assert {f"{unique}-control", f"{unique}-queue", dead_letters} <= set(topics)
    assert any("changelog" in topic for topic in topics), sorted(topics)
    assert all(topics[t] for t in (f"{unique}-control", f"{unique}-queue", dead_letters))
    assert any(b"DEBUG" in text for text in logs.values()), sorted(logs)
    assert len([path for path in logs if "worker" in path]) == 2 and database
    places = {**{f"topic {t}": data for t, data in topics.items()}, **logs, **database, **pages}
    places |= {f"output of {name}": data for name, data in outputs.items()}
    assert leaks([owner, one, two, three], places) == []


def _read(url: str) -> bytes:
    """A page's body, whatever its status."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            body: bytes = answer.read()
    except urllib.error.HTTPError as error:
        body = error.read()
    return body


def assert_loopback_only(workers: list[Service]) -> None:
    """The workers' web servers answer on loopback, not on the host's network address (when it has one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return
    if address.startswith("127."):
        return
    for worker in workers:
        port = int(worker.url.rsplit(":", 1)[1])
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=2).close()


def _beta_status(api_url: str, key: str) -> int:
    """The status code of collector beta, as the API shows it (52001 active)."""
    request = urllib.request.Request(
        f"{api_url}/v2/users/{USER}/apps/{APP}/collectors/beta", headers={"Authorization": f"Key {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        code: int = orjson.loads(answer.read())["collector"]["status"]["code"]
        return code
