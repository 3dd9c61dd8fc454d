"""One measured deployment: the reference destination and one or more workers, on per-run topics.

Each run gets its own consumer group, queue and dead-letter topics, destination database and logs (under
``workdir/name``), so runs on the same predictions topic do not see each other's records.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.workload import DESTINATION_APP, DESTINATION_USER, KEY_ENV
from streams.core.ledger import QUEUED, REQUEUED, Ledger
from streams.services.destination.store import Store
from streams.tools.localstack import (
    Service,
    check_running,
    combined_ledger,
    get_json,
    start_destination,
    start_worker,
    wait_settled,
)


@dataclass(frozen=True, slots=True)
class Progress:
    """One poll of the workers' stats summary."""

    at: float  # time.monotonic()
    events: int  # read
    done: int  # queued inputs with an outcome (posted, duplicate, dead-lettered, dropped, filtered)
    pending: int  # queued inputs without one yet


@dataclass(slots=True)
class Stack:
    """A running destination and its workers."""

    destination: Service
    workers: list[Service]
    db: Path
    queue_topic: str
    progress: list[Progress] = field(default_factory=list)
    """The workers' stats summary at each poll: how reading and posting went over time."""
    starter: Callable[[int, Mapping[str, str]], Service] | None = None
    started: list[Service] = field(default_factory=list)
    """Every worker started, running or not (their logs), stopped when the stack ends."""

    def spawn(self, number: int, env: Mapping[str, str] | None = None) -> Service:
        """Start one more worker in the group (``worker-N`` its directory), with ``env`` added; it is one of
        :attr:`workers` until removed."""
        assert self.starter is not None
        worker = self.starter(number, env or {})
        self.started.append(worker)
        self.workers.append(worker)
        return worker

    def served(self) -> dict[str, Any]:
        """The destination's ``/_stats``: requests, inputs by outcome, batch-size histogram."""
        stats: dict[str, Any] = get_json(f"{self.destination.url}/_stats")
        return stats

    def set_faults(self, **faults: Any) -> None:
        """Replace the destination's injected faults (it must run with ``faults=True``)."""
        set_destination_faults(self.destination.url, faults)

    def events_read(self) -> int:
        """Events the workers have read so far (0 while a worker does not answer)."""
        check_running(self.workers)
        with contextlib.suppress(OSError):
            return self._record(combined_ledger(self.workers, funnels=False))
        return 0

    def _record(self, ledger: Ledger) -> int:
        events = int(ledger.events.get("events", 0))
        pending = ledger.pending()
        done = ledger.totals[QUEUED] + ledger.totals[REQUEUED] - pending
        self.progress.append(Progress(time.monotonic(), events, done, pending))
        return events

    def longest_posting_pause_s(self, since: float) -> float:
        """The longest time after ``since`` (monotonic) in which queued inputs waited and none got an outcome,
        from the polls (250-300 ms apart): a posting agent starved of its records shows here."""
        longest, last_change, last_done = 0.0, since, -1
        for sample in self.progress:
            if sample.at < since:
                continue
            if sample.done != last_done or sample.pending == 0:
                last_change, last_done = sample.at, sample.done
            longest = max(longest, sample.at - last_change)
        return round(longest, 2)

    def wait_events(self, *, at_least: int, timeout_s: float) -> None:
        """Poll the workers' stats summary until they have read ``at_least`` events: every 50 ms for the first
        event (the start of a timed window), every 250 ms after (the full stats sum 8 ledgers of 1,000 funnels
        with 1,000 collectors: polling those cost the worker ~3% of its CPU, so the bench reads the summary)."""
        deadline = time.monotonic() + timeout_s
        while self.events_read() < at_least:
            if time.monotonic() > deadline:
                tails = "\n".join(worker.log_tail() for worker in self.workers)
                raise TimeoutError(f"the workers read fewer than {at_least:,} events in {timeout_s:.0f}s:\n{tails}")
            time.sleep(0.05 if at_least <= 1 else 0.25)

    def settle(self, *, events: int, timeout_s: float) -> dict[str, Any]:
        """Wait until the workers read ``events`` and every queued input has an outcome; the combined ledger."""
        return wait_settled(self.workers, events=events, timeout_s=timeout_s, on_poll=self._record)

    def wait_stored(self, *, at_least: int, timeout_s: float, idle_s: float = 60.0) -> None:
        """Poll the destination every 50 ms until it has stored ``at_least`` inputs.

        Gives up after ``timeout_s``, or once nothing new was stored for ``idle_s`` (inputs lost, or the
        workers stuck: a run that lost one input of 225,261 otherwise waited the whole ``timeout_s``).
        """
        start = time.monotonic()
        deadline = start + timeout_s
        last_change, last_stored = start, -1
        while (stored := self.served()["inputs"]["stored"]) < at_least:
            now = time.monotonic()
            if stored != last_stored:
                last_change, last_stored = now, stored
            if now > deadline or now - last_change > idle_s:
                waited = f"in {now - start:.0f}s" if now > deadline else f"and nothing more for {idle_s:.0f}s"
                raise TimeoutError(
                    f"the destination stored {stored:,} of {at_least:,} inputs {waited}; "
                    "the workers' logs and /collectors/stats/ are in the kept run directory"
                )
            time.sleep(0.05)

    def processes(self) -> dict[str, psutil.Process]:
        """The workers (``worker``, or ``worker-0``, ``worker-1``...) and the destination, for CPU accounting."""
        names = ["worker"] if len(self.workers) == 1 else [f"worker-{n}" for n in range(len(self.workers))]
        services = {**dict(zip(names, self.workers, strict=True)), "destination": self.destination}
        return {name: psutil.Process(service.process.pid) for name, service in services.items()}


def set_destination_faults(url: str, faults: Mapping[str, Any]) -> None:
    """POST the destination's ``/_faults`` (it must run with ``faults=True``)."""
    request = urllib.request.Request(
        f"{url}/_faults",
        data=orjson.dumps(dict(faults)),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def stored_inputs(db: Path) -> int:
    """How many inputs the bench's destination app holds."""
    with Store(db) as store:
        return store.count_inputs(DESTINATION_USER, DESTINATION_APP)


def mean_batch(served: Mapping[str, Any]) -> float | None:
    """Mean inputs per POST request, from ``/_stats``."""
    requests = sum(served["batch_sizes"].values())
    return round(sum(served["inputs"].values()) / requests, 1) if requests else None


@contextlib.contextmanager
def running(
    *,
    bootstrap: str,
    topic: str,
    name: str,
    config: Path,
    workdir: Path,
    destination_port: int,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    faults: bool = False,
    initial_faults: Mapping[str, Any] | None = None,
) -> Iterator[Stack]:
    """Start the destination (with ``initial_faults`` set before any worker starts), then ``workers`` workers
    at once (one consumer group, ``name-worker``) reading ``topic``; stop them all when the block ends."""
    home = workdir / name
    home.mkdir(parents=True, exist_ok=True)
    key = f"bench-{secrets.token_hex(12)}"
    db = home / "destination.db"
    with Store(db) as store:
        store.bootstrap(DESTINATION_USER, DESTINATION_APP, key, ["PostInputs"])
    queue_topic = f"{name}-queue"
    worker_env = {
        KEY_ENV: key,
        "COLLECTORS_PREDICTIONS_TOPIC": topic,
        "COLLECTORS_QUEUE_TOPIC": queue_topic,
        "COLLECTORS_DEAD_LETTER_TOPIC": f"{name}-dead-letters",
        **(env or {}),
    }
    destination = start_destination(
        db, port=destination_port, faults=faults or bool(initial_faults), log=home / "destination.log"
    )
    if initial_faults:
        set_destination_faults(destination.url, initial_faults)

    def start(number: int, extra: Mapping[str, str]) -> Service:
        return start_worker(
            config,
            broker=f"kafka://{bootstrap}",
            app_id=f"{name}-worker",
            data_dir=home / f"worker-{number}",
            env={**worker_env, **extra},
        )

    futures: list[Future[Service]] = []
    stack: Stack | None = None
    try:
        if workers:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(start, number, {}) for number in range(workers)]
        failures = [exc for exc in (future.exception() for future in futures) if exc is not None]
        if failures:
            raise failures[0]
        first = [f.result() for f in futures]
        stack = Stack(
            destination=destination, workers=list(first), db=db, queue_topic=queue_topic, starter=start, started=first
        )
        yield stack
    finally:
        if stack is None:
            started = [f.result() for f in futures if f.done() and f.exception() is None]
        else:
            started = stack.started
        for service in started:
            service.stop()
        destination.stop()
