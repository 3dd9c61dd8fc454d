"""Start and stop the local pieces as real processes: the reference destination and workers.

Used by ``collectors demo``, the tests and the benchmarks, so each starts them the same way.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streams.core.ledger import Ledger
from streams.core.secrets import ENV_SECRET, ENV_SECRET_FILE, generate_secret

_SECRET = generate_secret()
"""The secret of the processes this process starts, unless its environment gives one: they share it."""


def secret_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The secret processes started from here seal keys with: the environment's, or one made for this run."""
    given = {**os.environ, **(env or {})}
    return {} if given.get(ENV_SECRET) or given.get(ENV_SECRET_FILE) else {ENV_SECRET: _SECRET}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_pair() -> int:
    """A port whose next one is free too (a local Kafka broker's controller listens on port + 1), both below the
    ephemeral range: a port the system may hand out as a client's source port can be taken between this check
    and the broker's start."""
    while True:
        port = random.randrange(20_000, 29_000)
        if _bindable(port) and _bindable(port + 1):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def get_json(url: str, timeout: float = 2.0) -> Any:
    """GET a JSON document (raises ``OSError`` when the service does not answer)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return orjson.loads(response.read())


def wait_http(url: str, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``url`` answers 200; fail early with the process's output if it exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, process.args))} exited with {process.returncode}")  # type: ignore[arg-type]
        with contextlib.suppress(OSError, urllib.error.URLError):
            get_json(url, timeout=1.0)
            return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s")


@dataclass
class Service:
    """A started process and where it answers."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; return the exit code."""
        return stop_process(self.process, timeout_s)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _spawn(args: list[str], log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **secret_env(env), **(env or {})},
        )


def start_destination(
    db: Path,
    *,
    port: int | None = None,
    faults: bool = False,
    log: Path | None = None,
    timeout_s: float = 30,
    log_level: str = "warning",
    grpc_port: int | None = None,
) -> Service:
    """Serve the reference destination on 127.0.0.1 from the SQLite file ``db`` (and over gRPC on ``grpc_port``)."""
    port = port or free_port()
    log = log or db.with_suffix(".log")
    args = ["destination", "serve", "--db", str(db), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--log-level", log_level]
    args += [] if grpc_port is None else ["--grpc-port", str(grpc_port)]
    process = _spawn(args + (["--faults"] if faults else []), log)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", timeout_s=timeout_s, process=process)
    return Service(process, url, log)


def start_command(args: list[str], *, url: str, health_path: str, log: Path, timeout_s: float = 60) -> Service:
    """Run ``collectors ARGS...`` as its own process answering at ``url``; wait until ``health_path`` answers."""
    process = _spawn(args, log)
    wait_http(url + health_path, timeout_s=timeout_s, process=process)
    return Service(process, url, log)


def start_model(*, log: Path, port: int | None = None, grpc_port: int | None = None) -> Service:
    """Serve the reference model (``collectors model serve``) on 127.0.0.1, and over gRPC on ``grpc_port``."""
    port = port or free_port()
    grpc = ["--grpc-port", str(grpc_port)] if grpc_port is not None else []
    return start_command(
        ["model", "serve", "--port", str(port), *grpc], url=f"http://127.0.0.1:{port}", health_path="/healthz", log=log
    )


def start_tap(
    upstream: str,
    *,
    broker: str,
    topic: str,
    auth_url: str,
    log: Path,
    port: int | None = None,
    grpc: tuple[int, str] | None = None,
) -> Service:
    """Serve a tap (``collectors tap serve``) on 127.0.0.1 in front of ``upstream``; ``grpc`` is its gRPC port
    and the upstream's gRPC address."""
    port = port or free_port()
    args = ["tap", "serve", "--upstream", upstream, "--port", str(port), "--auth-url", auth_url]
    args += ["--broker", broker, "--topic", topic]
    if grpc is not None:
        args += ["--grpc-port", str(grpc[0]), "--upstream-grpc", grpc[1]]
    return start_command(args, url=f"http://127.0.0.1:{port}", health_path="/_tap/stats", log=log)


def start_worker(
    config: Path,
    *,
    broker: str,
    app_id: str,
    data_dir: Path,
    env: Mapping[str, str] | None = None,
    web_port: int | None = None,
    log: Path | None = None,
    timeout_s: float = 60,
) -> Service:
    """Run ``collectors worker`` as its own process; wait until its web server answers."""
    web_port = web_port or free_port()
    log = log or data_dir / "worker.log"
    args = ["worker", "--config", str(config), "--broker", broker, "--app-id", app_id]
    args += ["--data-dir", str(data_dir), "--web-port", str(web_port)]
    process = _spawn(args, log, env)
    url = f"http://127.0.0.1:{web_port}"
    wait_http(f"{url}/collectors/healthz/", timeout_s=timeout_s, process=process)
    return Service(process, url, log)


def worker_stats(worker: Service, *, funnels: bool = True) -> dict[str, Any]:
    """The worker's ledger, as ``/collectors/stats/`` serves it (without the collectors' funnels unless
    ``funnels``)."""
    query = "" if funnels else "?funnels=false"
    stats: dict[str, Any] = get_json(f"{worker.url}/collectors/stats/{query}")
    return stats


def combined_ledger(workers: list[Service], *, funnels: bool = True) -> Ledger:
    """The ledgers of all workers summed: together they hold every partition once."""
    total = Ledger()
    for worker in workers:
        total.merge_json(worker_stats(worker, funnels=funnels), funnels=funnels)
    return total


def events_read(workers: list[Service]) -> int:
    """Events the workers have read so far, from their stats summary."""
    return int(combined_ledger(workers, funnels=False).events.get("events", 0))


def check_running(workers: list[Service]) -> None:
    """Raise if a worker's process has exited, with the end of its log: waiting on it would only time out."""
    for worker in workers:
        code = worker.process.poll()
        if code is not None:
            raise RuntimeError(f"the worker at {worker.url} exited with {code}; its log ends:\n{worker.log_tail()}")


def wait_settled(
    workers: list[Service], *, events: int, timeout_s: float, on_poll: Callable[[Ledger], object] | None = None
) -> dict[str, Any]:
    """Wait until the workers together counted ``events`` events and every queued input has an outcome;
    return the combined ledger's snapshot. Polls the summary (no funnels, each poll handed to ``on_poll``),
    then reads the funnels once. A worker that exits ends the wait at once."""
    deadline = time.monotonic() + timeout_s
    total = Ledger()
    while time.monotonic() < deadline:
        check_running(workers)
        with contextlib.suppress(OSError):
            total = combined_ledger(workers, funnels=False)
            if on_poll is not None:
                on_poll(total)
            if total.events.get("events", 0) >= events and total.pending() == 0:
                return combined_ledger(workers).snapshot()
        time.sleep(0.3)
    states = []
    for worker in workers:
        with contextlib.suppress(OSError):
            stats = worker_stats(worker)
            partitions = get_json(f"{worker.url}/collectors/partitions/")
            tasks = get_json(f"{worker.url}/collectors/tasks/")["tasks"]
            waiting = [t for t in tasks if any("/streams/" in frame for frame in t["at"])]  # this project's
            states.append(
                {"ready": stats.get("ready"), "poster": stats.get("poster"), "partitions": partitions, "tasks": waiting}
            )
    raise TimeoutError(
        f"workers did not settle within {timeout_s:.0f}s; last ledger: {total.snapshot()}; workers: {states}"
    )
