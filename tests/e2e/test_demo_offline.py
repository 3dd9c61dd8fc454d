"""`collectors demo`, over the shipped collectors and over the example's, posts inputs with no network beyond
loopback: run in a network namespace of its own (only `lo`) when the machine allows one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import free_port_pair

pytestmark = pytest.mark.kafka

EXAMPLE = Path(__file__).parents[2] / "examples" / "active-learning" / "collectors.yaml"


def loopback_only() -> list[str]:
    """The prefix running a command with loopback as its only network, or [] when this machine cannot."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return []
    probe = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True, check=False)
    return ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] if probe.returncode == 0 else []


@pytest.mark.parametrize("config", [None, EXAMPLE], ids=["shipped", "example"])
def test_demo_posts_with_no_network_beyond_loopback(kafka: LocalKafka, tmp_path: Path, config: Path | None) -> None:
    command = [sys.executable, "-m", "streams", "demo", "--kafka-port", str(free_port_pair())]
    command += ["--workdir", str(tmp_path / "demo"), *(["--config", str(config)] if config else [])]
    env = {**os.environ, "COLLECTORS_KAFKA_HOME": str(tmp_path / "kafka"), "COLLECTORS_KAFKA_DIST": str(kafka.dist)}
    done = subprocess.run(
        [*loopback_only(), *command], env=env, capture_output=True, text=True, timeout=420, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    posted = int(done.stdout.strip().splitlines()[-1].split()[0])
    assert posted > 0
    assert done.stdout.strip().endswith(f"{posted} inputs posted to the destination")
