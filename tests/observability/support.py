"""Helpers of the observability tests: a management API that watches the test's workers, and metrics read
from a ``/metrics`` page."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from streams.tools.localstack import Service, free_port, wait_http
from tests.conftest import topic_env

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def start_control_api(
    broker: str, unique: str, auth_url: str, log: Path, *, wait: str | None = "/readyz", json_logs: bool = False
) -> Service:
    """``collectors control serve`` on the test's control topic, watching the test's workers (app id
    ``unique``); waits until ``wait`` answers 200 (None: not at all)."""
    port = free_port()
    env = topic_env(unique)
    args = ["control", "serve", "--port", str(port), "--broker", broker, "--topic", env["COLLECTORS_CONTROL_TOPIC"]]
    args += ["--auth-url", auth_url, "--app-id", unique]
    args += ["--predictions-topic", env["COLLECTORS_PREDICTIONS_TOPIC"], "--queue-topic", env["COLLECTORS_QUEUE_TOPIC"]]
    args += ["--dead-letter-topic", env["COLLECTORS_DEAD_LETTER_TOPIC"]]
    args += ["--log-format", "json"] if json_logs else []
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams", *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    url = f"http://127.0.0.1:{port}"
    if wait is not None:
        wait_http(url + wait, timeout_s=90, process=process)
    return Service(process, url, log)


def scrape(url: str) -> Samples:
    """The samples of a ``/metrics`` page by (name, labels)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when it is absent (a counter not incremented yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def status_of(url: str) -> int | None:
    """The HTTP status ``url`` answers, None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def statuses_until(url: str, condition: Callable[[list[int | None]], bool], *, timeout_s: float) -> list[int | None]:
    """Poll ``url`` every 50 ms, recording each answer's status (None: no answer), until ``condition`` holds
    on the record; fail after ``timeout_s``."""
    seen: list[int | None] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = status_of(url)
        if not seen or seen[-1] != status:
            seen.append(status)
        if condition(seen):
            return seen
        time.sleep(0.05)
    raise TimeoutError(f"{url} answered {seen} within {timeout_s:.0f}s")
