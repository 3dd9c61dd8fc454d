"""Docker from tests: a daemon that answers (started here when this is root and none runs), containers
run on the host's network and removed afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def daemon_problem() -> str | None:
    """None when a Docker daemon answers (starting one if allowed), else why none can be had."""
    if shutil.which("docker") is None:
        return "the docker client is not installed (Debian: apt-get install docker.io)"
    if _answers():
        return None
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        return "no Docker daemon answers, and this user cannot start one (dockerd missing or not root)"
    log = Path("/tmp/collectors-dockerd.log").open("ab")  # noqa: SIM115 - the daemon outlives this call
    subprocess.Popen([dockerd], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _answers():
            return None
        time.sleep(1)
    return "dockerd was started but did not answer within 60 s; see /tmp/collectors-dockerd.log"


def _answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


class Containers:
    """Containers started by one test, on the host's network, all removed by ``remove_all``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.names: list[str] = []

    def run(self, name: str, image: str, args: Sequence[str] = (), *, env: dict[str, str] | None = None,
            volumes: Sequence[str] = ()) -> str:  # fmt: skip
        full = f"{self.prefix}-{name}"
        options = ["--detach", "--name", full, "--network", "host"]
        for key, value in (env or {}).items():
            options += ["--env", f"{key}={value}"]
        for volume in volumes:
            options += ["--volume", volume]
        docker("run", *options, image, *args)
        self.names.append(full)
        return full

    def exec(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        options = [item for key, value in (env or {}).items() for item in ("--env", f"{key}={value}")]
        return docker("exec", *options, f"{self.prefix}-{name}", *args, check=False)

    def logs(self, name: str) -> str:
        done = docker("logs", "--tail", "40", f"{self.prefix}-{name}", check=False)
        return done.stdout + done.stderr

    def health(self, name: str) -> str:
        done = docker("inspect", "--format", "{{.State.Health.Status}}", f"{self.prefix}-{name}", check=False)
        return done.stdout.strip()

    def remove_all(self) -> None:
        if self.names:
            docker("rm", "--force", "--volumes", *self.names, check=False)
        self.names.clear()
