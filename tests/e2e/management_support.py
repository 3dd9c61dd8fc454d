"""Helpers of the end-to-end management tests: the management API as its own process, keys made in the
destination's database, the workers' view of their collectors, and what ``simulate`` predicts for collectors
written through the API."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from click.testing import CliRunner, Result

from streams.core.ids import input_id
from streams.core.simulate import offline_index, simulate
from streams.services.destination.store import Store
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import Service, free_port, get_json, stop_process, wait_http
from streams.tools.manage.client import ControlClient
from streams.tools.samples.generate import events
from tests.conftest import Destination, write_config

MODEL = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "general-image-recognition"}
USER, APP = "ann", "pets"


@dataclass
class ControlApi:
    """``collectors control serve`` running as its own process on the test's control topic."""

    service: Service
    topic: str

    @property
    def url(self) -> str:
        return self.service.url

    def client(self, key: str) -> ControlClient:
        return ControlClient(self.url, key, timeout_s=30)

    def cli_env(self, key: str, **extra: str) -> dict[str, str]:
        """What the management commands read: the API, the caller's key and the app."""
        return {
            "COLLECTORS_API": self.url,
            "COLLECTORS_API_KEY": key,
            "COLLECTORS_USER": USER,
            "COLLECTORS_APP": APP,
            **extra,
        }


class ControlApis:
    """Starts the management API as a process, ``start(destination)`` (its callers' keys are checked there),
    on the test's control topic; ``stop_all()`` at the end of the test."""

    def __init__(self, kafka: LocalKafka, unique: str, tmp_path: Path) -> None:
        self.kafka = kafka
        self.topic = f"{unique}-control"  # the workers' COLLECTORS_CONTROL_TOPIC (tests.conftest.topic_env)
        self.tmp_path = tmp_path
        self.started: list[Service] = []

    def start(self, destination: Destination, *options: str, env: Mapping[str, str] | None = None) -> ControlApi:
        """``options`` are more options of ``control serve``; ``env`` is laid over this process's environment."""
        port = free_port()
        log = self.tmp_path / f"control-api-{len(self.started)}.log"
        command = ["control", "serve", "--port", str(port), "--broker", f"kafka://{self.kafka.bootstrap_servers}"]
        command += ["--topic", self.topic, "--auth-url", destination.url, *options]
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "streams", *command],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
            )
        url = f"http://127.0.0.1:{port}"
        service = Service(process, url, log)
        self.started.append(service)
        wait_http(f"{url}/readyz", timeout_s=60, process=process)
        # and /openapi.json, which only this API serves: another service may have taken the port meanwhile
        wait_http(f"{url}/openapi.json", timeout_s=10, process=process)
        return ControlApi(service, self.topic)

    def stop_all(self) -> None:
        for service in self.started:
            stop_process(service.process)
            print(f"--- {service.log} ---\n{service.log_tail(15)}")


def new_key(destination: Destination, prefix: str, *, app_id: str | None = APP, scopes: Sequence[str] = ()) -> str:
    """A key made in the destination's database, recognisable by its first 4 characters (what redaction shows).

    ``app_id`` None makes a user-wide key (the app owner's key that the management API accepts)."""
    assert len(prefix) == 4
    clear = f"{prefix}{uuid.uuid4().hex}"
    with Store(destination.db) as store:
        store.ensure_user(USER)
        store.ensure_app(USER, APP)
        store.create_key(USER, app_id, list(scopes) or (["All"] if app_id is None else ["PostInputs"]), clear)
    return clear


def revoke(destination: Destination, clear_key: str) -> None:
    with Store(destination.db) as store:
        record = store.find_key(clear_key)
        assert record is not None, "the key exists"
        store.revoke_key(record.key_id)


def empty_config(tmp_path: Path) -> Path:
    """A worker configuration with no static collector: every collector comes from the control topic."""
    return write_config(tmp_path / "no-static-collectors.yaml", {"collectors": []})


def collector_body(collector_id: str, base_url: str, key: str | None, **fields: Any) -> dict[str, Any]:
    """A collector as the API takes it (destination user and app are the path's)."""
    destination: dict[str, Any] = {"base_url": base_url}
    if key is not None:
        destination["key"] = key
    return {"id": collector_id, "source": MODEL, "destination": destination, **fields}


def event_lines(count: int, *, start: int, seed: int) -> list[bytes]:
    """Events of the general model with ids ``evt-{start..}``: batches with distinct starts never share an id."""
    return [orjson.dumps(e) for e in events(count, seed=seed, start=start, text_share=0.0)]


async def predicted_ids(
    tmp_path: Path, collectors: Sequence[Mapping[str, Any]], lines: Sequence[bytes], workflows: Sequence[Any] = ()
) -> set[str]:
    """The input ids ``simulate`` predicts for collectors written through the API (into ann/pets)."""
    document = {
        "collectors": [
            {
                **{k: v for k, v in c.items() if k not in ("created_at", "modified_at", "last_error")},
                "destination": {
                    "base_url": c["destination"]["base_url"],
                    "user_id": USER,
                    "app_id": APP,
                    "key": "offline",
                },
            }
            for c in collectors
        ],
        "workflows": list(workflows),
    }
    config = write_config(tmp_path / f"simulate-{uuid.uuid4().hex[:6]}.yaml", document)
    report = await simulate(offline_index(config), lines)
    return {input_id(cid, eid) for cid, ids in report.selected.items() for eid in ids}


def listed(worker: Service) -> dict[str, dict[str, Any]]:
    """The collectors a worker runs now, by qualified id (its ``/collectors/list/``)."""
    return {c["id"]: c for c in get_json(f"{worker.url}/collectors/list/")["collectors"]}


def wait_listed(
    workers: Sequence[Service], condition: Callable[[dict[str, dict[str, Any]]], bool], *, timeout_s: float, what: str
) -> float:
    """Wait until every worker's collectors satisfy ``condition``; return the seconds it took."""
    began = time.monotonic()
    deadline = began + timeout_s
    last: list[Any] = []
    while time.monotonic() < deadline:
        try:
            last = [listed(w) for w in workers]
            if all(condition(state) for state in last):
                return time.monotonic() - began
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}; the workers list: {last}")


def wait_ready(workers: Sequence[Service], *, timeout_s: float = 30) -> None:
    """Wait until every worker has read the control topic to its end (its agents run from then on)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if all(get_json(f"{w.url}/collectors/healthz/")["ready"] for w in workers):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the workers were not ready within {timeout_s:.0f}s")


def stop_together(workers: Sequence[Service], timeout_s: float = 20) -> None:
    """SIGTERM every worker first, then wait for them (SIGKILL after ``timeout_s``): workers that take long to
    stop do it side by side, not one after the other."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for worker in workers:
        stop_process(worker.process, max(0.1, deadline - time.monotonic()))


def funnel(snapshot: Mapping[str, Any], collector_id: str) -> dict[str, int]:
    counts: dict[str, int] = snapshot["collectors"].get(collector_id, {})
    return counts


async def invoke(command: click.Command, args: Sequence[str], env: Mapping[str, str] | None = None) -> Result:
    """Run a command as ``collectors ...`` would, in a thread (some commands run their own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, command, list(args), env=dict(env or {}))


async def topic_end(bootstrap: str, topic: str) -> int:
    """The end offset of a one-partition topic (the control topic): how many records were ever written."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([partition]))[partition])
    finally:
        await consumer.stop()
