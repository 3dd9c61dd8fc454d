"""The command `kafka status` suggests starts that very broker, from the user's jar cache (no download)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streams.tools.localstack import free_port_pair

pytestmark = pytest.mark.kafka


def collectors(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "streams", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)


def test_the_status_hint_starts_the_broker_of_that_home(kafka: object, tmp_path: Path) -> None:
    if shutil.which("java") is None:
        pytest.skip("java is not installed")
    port, home = free_port_pair(), tmp_path / "a home"
    stopped = collectors("kafka", "status", "--port", str(port), "--home", str(home))
    assert stopped.returncode == 1
    hinted = stopped.stdout.split("`")[1]
    assert hinted == f"collectors kafka up --port {port} --home {shlex.quote(str(home))}"
    started = collectors(*shlex.split(hinted)[1:], "--wait", "180")  # as hinted; patient on a loaded machine
    try:
        assert started.returncode == 0, started.stderr
        assert "fetching" not in started.stderr  # the jars come from the user's cache, whatever the home
        assert collectors("kafka", "status", "--port", str(port), "--home", str(home)).returncode == 0
    finally:
        assert collectors("kafka", "down", "--port", str(port), "--home", str(home)).returncode == 0
