"""Logs that tell the story: at INFO, a worker says when it started and with which collectors, which
partitions it holds, and which collectors were added, paused, resumed or removed (by id); library noise is
not there; ``--log-format json`` writes one JSON object per line."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.core.logformat import Demote, JsonFormatter
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import Service
from streams.tools.manage.client import ControlClient
from tests.e2e.management_support import APP, USER, collector_body, empty_config, new_key, wait_ready

from .support import start_control_api


def records(log: Path) -> list[dict[str, Any]]:
    """Every line of a JSON log, parsed (fails on a line that is not one JSON object)."""
    lines = log.read_text(encoding="utf-8").splitlines()
    parsed = [orjson.loads(line) for line in lines if line.strip()]
    assert all(isinstance(record, dict) for record in parsed)
    return parsed


def wait_logged(service: Service, fragment: str, *, timeout_s: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [r for r in records(service.log) if fragment in r["message"]]
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"{fragment!r} not logged within {timeout_s:.0f}s; the log: {service.log_tail(40)}")


@pytest.mark.kafka
async def test_a_worker_logs_its_story_as_json_lines(
    tmp_path, kafka: LocalKafka, destination_factory, worker_factory, unique
) -> None:
    destination = destination_factory()
    api = start_control_api(f"kafka://{kafka.bootstrap_servers}", unique, destination.url, tmp_path / "api.log")
    try:
        worker = worker_factory(empty_config(tmp_path), env={"COLLECTORS_LOG_FORMAT": "json"})
        wait_ready([worker], timeout_s=60)
        wait_logged(worker, "started with 0 collectors")
        wait_logged(worker, "partitions assigned")
        owner = new_key(destination, "ownr", app_id=None)
        client = ControlClient(api.url, owner, timeout_s=30)
        body = collector_body("watched", destination.url, new_key(destination, "post"), pre_queue_random_sample=1.0)
        await asyncio.to_thread(client.create, "collectors", USER, APP, [body])
        wait_logged(worker, f"collector {USER}/{APP}/watched added")
        await asyncio.to_thread(client.overwrite, "collectors", USER, APP, [{**body, "status": "paused"}])
        wait_logged(worker, f"collector {USER}/{APP}/watched paused")
        await asyncio.to_thread(client.delete, "collectors", USER, APP, ["watched"])
        wait_logged(worker, f"collector {USER}/{APP}/watched removed")
        worker.stop()

        logged = records(worker.log)
        assert {"time", "level", "logger", "message", "pid"} <= set(logged[0])
        levels = {record["level"] for record in logged}
        assert levels <= {"INFO", "WARNING"}, [r for r in logged if r["level"] not in ("INFO", "WARNING")]
        assert not [r for r in logged if r["logger"].startswith(("faust", "mode")) and r["level"] == "INFO"]
        assert any(r["message"].endswith("stopping") for r in logged)
    finally:
        api.stop()


def test_library_noise_is_put_at_its_level() -> None:
    demote = Demote(logging.INFO)
    election = logging.LogRecord(
        "aiokafka.consumer.group_coordinator",
        logging.ERROR,
        __file__,
        1,
        "Group Coordinator Request failed: %s",
        ("[Error 15] GroupCoordinatorNotAvailableError",),
        None,
    )
    assert demote.filter(election) and election.levelname == "INFO"
    recovery = logging.LogRecord("faust.tables.recovery", logging.INFO, __file__, 1, "Highwater: %r", ({},), None)
    assert not demote.filter(recovery) and recovery.levelname == "DEBUG"
    ours = logging.LogRecord(
        "streams.worker.runtime", logging.INFO, __file__, 1, "collector %s added", ("a/b/c",), None
    )
    assert demote.filter(ours) and ours.levelname == "INFO"
    failure = logging.LogRecord("aiokafka.conn", logging.ERROR, __file__, 1, "Unable to connect", (), None)
    assert demote.filter(failure) and failure.levelname == "ERROR"

    line = JsonFormatter().format(ours)
    assert orjson.loads(line) | {"time": "", "pid": 0} == {
        "time": "",
        "pid": 0,
        "level": "INFO",
        "logger": "streams.worker.runtime",
        "message": "collector a/b/c added",
    }
