"""The images built and run: Kafka, the destination, the management API and two workers as containers,
a collector applied through the API container's CLI, sample predictions produced from the host, exactly
the inputs `simulate` predicts stored — with one worker killed on the way."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from streams.core.ids import input_id
from tests.deploy.docker import Containers, daemon_problem, docker

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "streams" / "tools" / "samples" / "predictions.jsonl"
IMAGE = os.environ.get("COLLECTORS_TEST_IMAGE", "collectors:local")
KAFKA_IMAGE = os.environ.get("COLLECTORS_TEST_KAFKA_IMAGE", "collectors-kafka:local")
KAFKA_PORT = 29392  # restarted by nothing here, but kept out of the ephemeral range like every broker port
COLLECTOR = """\
collectors:
  - id: sampled
    source: {model_user_id: clarifai, model_app_id: main, model_id: general-image-recognition}
    destination: {base_url: "http://127.0.0.1:%d", user_id: demo, app_id: training, key_env: DEMO_KEY}
    pre_queue_random_sample: 0.5
"""


@pytest.fixture(scope="module")
def images() -> None:
    problem = daemon_problem()
    if problem is not None:
        pytest.skip(f"container test not run: {problem}")
    if os.environ.get("COLLECTORS_TEST_SKIP_IMAGE_BUILD") != "1":
        print("building the images (deploy/images.sh; the Debian bases take a few minutes the first time)")
        done = subprocess.run(
            ["bash", "deploy/images.sh"], cwd=ROOT, env={**os.environ, "PYTHON": sys.executable}, check=False
        )
        assert done.returncode == 0, "deploy/images.sh failed (its output is above)"


@pytest.fixture
def containers(images: None) -> Iterator[Containers]:
    group = Containers(f"collectors-test-{uuid.uuid4().hex[:8]}")
    yield group
    group.remove_all()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float, on_timeout: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout_s:g}s\n{on_timeout()}")
        time.sleep(1)


def collectors(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams", *args], capture_output=True, text=True, check=False)


def test_the_stack_in_containers_posts_exactly_what_simulate_predicts(containers: Containers, tmp_path: Path) -> None:
    destination_port, api_port = free_port(), free_port()
    secret = collectors("secrets", "generate").stdout.strip()
    key = f"container-test-{uuid.uuid4().hex}"
    broker = f"kafka://127.0.0.1:{KAFKA_PORT}"
    common = {"COLLECTORS_BROKER": broker, "COLLECTORS_SECRET_KEY": secret}
    config = tmp_path / "collectors.yaml"
    config.write_text(COLLECTOR % destination_port)
    tmp_path.chmod(0o755)
    config.chmod(0o644)

    containers.run("kafka", KAFKA_IMAGE, env={
        "CLUSTER_ID": "QUYYhP1YRbOJbpSRSl4KUw",
        "KAFKA_LISTENERS": f"PLAINTEXT://127.0.0.1:{KAFKA_PORT},CONTROLLER://127.0.0.1:{KAFKA_PORT + 1}",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{KAFKA_PORT}",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@127.0.0.1:{KAFKA_PORT + 1}",
        "KAFKA_HEALTH_PORT": str(KAFKA_PORT),
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    })  # fmt: skip
    containers.run(
        "destination", IMAGE, ["destination", "serve", "--host", "127.0.0.1", "--port", str(destination_port)],
        env={"COLLECTORS_HEALTH_URL": f"http://127.0.0.1:{destination_port}/healthz"},
    )  # fmt: skip
    wait_for(lambda: containers.health("kafka") == "healthy", "Kafka's container healthy", 120,
             lambda: containers.logs("kafka"))  # fmt: skip
    wait_for(lambda: containers.health("destination") == "healthy", "the destination's container healthy", 60,
             lambda: containers.logs("destination"))  # fmt: skip
    made = containers.exec("destination", "collectors", "destination", "bootstrap", "demo", "training", "--key", key)
    assert made.returncode == 0, made.stderr

    containers.run("api", IMAGE, [
        "control", "serve", "--host", "127.0.0.1", "--port", str(api_port),
        "--auth-url", f"http://127.0.0.1:{destination_port}",
    ], env={**common, "COLLECTORS_HEALTH_URL": f"http://127.0.0.1:{api_port}/healthz"},
       volumes=[f"{tmp_path}:/work:ro"])  # fmt: skip
    workers = []
    for number in (1, 2):
        web_port = free_port()
        workers.append(containers.run(f"worker-{number}", IMAGE, ["worker"], env={
            # On the host's network every container has the host's name, the default worker id: give each its own.
            **common, "COLLECTORS_APP_ID": "container-test", "COLLECTORS_WEB_PORT": str(web_port),
            "COLLECTORS_WORKER_ID": f"container-test-{number}",
            "COLLECTORS_HEALTH_URL": f"http://127.0.0.1:{web_port}/healthz",
            "COLLECTORS_ALLOWED_DESTINATIONS": f"http://127.0.0.1:{destination_port}",
        }))  # fmt: skip
    for name in ("api", "worker-1", "worker-2"):
        wait_for(lambda name=name: containers.health(name) == "healthy", f"{name}'s container healthy", 120,
                 lambda name=name: containers.logs(name))  # fmt: skip

    applied = containers.exec(
        "api", "collectors", "apply", "-f", "/work/collectors.yaml", "--api", f"http://127.0.0.1:{api_port}",
        env={"COLLECTORS_API_KEY": key, "DEMO_KEY": key},
    )  # fmt: skip
    assert applied.returncode == 0, applied.stdout + applied.stderr

    predicted = collectors("simulate", "--config", str(config), "--events", str(SAMPLES), "--json")
    assert predicted.returncode == 0, predicted.stderr
    (report,) = orjson.loads(predicted.stdout)["collectors"]
    expected = {input_id(f"{report['app']}/{report['id']}", event_id) for event_id in report["selected"]}
    assert len(expected) > 50

    lines = SAMPLES.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"".join(lines[:half]))
    second.write_bytes(b"".join(lines[half:]))

    def stored() -> list[str]:
        ids: list[str] = []
        for page in range(1, 100):
            listed = containers.exec("destination", "collectors", "destination", "inputs", "list", "demo", "training",
                                     "--page", str(page), "--per-page", "1000", "--json")  # fmt: skip
            assert listed.returncode == 0, listed.stderr
            batch = [item["id"] for item in orjson.loads(listed.stdout)["inputs"]]
            ids += batch
            if len(batch) < 1000:
                return ids
        raise AssertionError("more inputs than expected")

    # Workers read the control topic to its end before they are ready; the collector is there by now.
    produced = collectors("produce", "--broker", broker, "--events", str(first))
    assert produced.returncode == 0, produced.stderr
    wait_for(lambda: len(stored()) > 0, "a first input posted", 120, lambda: containers.logs("worker-1"))
    docker("kill", workers[0])
    produced = collectors("produce", "--broker", broker, "--events", str(second))
    assert produced.returncode == 0, produced.stderr
    wait_for(lambda: set(stored()) >= expected, "every expected input stored after a worker was killed", 180,
             lambda: containers.logs("worker-2"))  # fmt: skip
    ids = stored()
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
