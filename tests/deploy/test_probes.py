"""Every path the Kubernetes probes and compose healthchecks call answers 200 on a running worker and API."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import Service, free_port, start_command
from tests.conftest import Destination, write_config
from tests.deploy.manifests import compose, render_k8s

pytestmark = pytest.mark.kafka


def probe_paths(container_name: str) -> set[str]:
    """The probe paths of one container of the Kubernetes base."""
    for doc in render_k8s():
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            if container["name"] == container_name:
                return {
                    container[probe]["httpGet"]["path"]
                    for probe in ("startupProbe", "livenessProbe", "readinessProbe")
                    if probe in container
                }
    raise AssertionError(f"no container {container_name} in deploy/k8s")


def compose_health_path(service: str) -> str:
    url: str = compose()["services"][service]["environment"]["COLLECTORS_HEALTH_URL"]
    return "/" + url.split("/", 3)[3]


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def answers_200(url: str, timeout_s: float = 90) -> int:
    deadline = time.monotonic() + timeout_s
    while (status := status_of(url)) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    return status


def test_probe_paths_answer_on_a_running_worker_and_api(
    kafka: LocalKafka,
    worker_factory: Callable[..., Service],
    destination_factory: Callable[..., Destination],
    tmp_path: Path,
    unique: str,
) -> None:
    destination = destination_factory()
    worker = worker_factory(write_config(tmp_path / "collectors.yaml", {"collectors": []}))
    port = free_port()
    api = start_command(
        ["control", "serve", "--port", str(port), "--broker", f"kafka://{kafka.bootstrap_servers}",
         "--topic", f"{unique}-control", "--auth-url", destination.url],
        url=f"http://127.0.0.1:{port}", health_path="/healthz", log=tmp_path / "api.log",
    )  # fmt: skip
    try:
        worker_paths = probe_paths("worker") | {compose_health_path("worker")}
        api_paths = probe_paths("api") | {compose_health_path("api")}
        assert worker_paths == {"/healthz", "/readyz"} and api_paths == {"/healthz", "/readyz"}
        for path in sorted(worker_paths):
            assert answers_200(worker.url + path) == 200, f"worker {path}"
        for path in sorted(api_paths):
            assert answers_200(api.url + path) == 200, f"management API {path}"
        assert answers_200(destination.url + compose_health_path("destination")) == 200
    finally:
        api.stop()
