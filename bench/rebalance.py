"""The ``rebalance`` variant: what a consumer group's changes cost while events arrive at a steady rate.

Events are produced at ``rate`` per second throughout, each stamped with its id, so every stored input can be
traced to its predictions partition (the event's key) and its queue partition (its collector's key). Workers
have stable ids (``COLLECTORS_WORKER_ID``); worker 0 runs throughout. In turn:

* **join**: worker 1 starts; the longest time no input was stored, from its start until the group is stable
  again and ``settle_s`` more (measured again when worker 2 joins);
* **restart**: worker 1 gets SIGTERM, keeping its membership (``COLLECTORS_LEAVE_GROUP_ON_STOP=false``), and
  starts again with the same id: whether worker 0 rebalanced, worker 0's longest posting pause meanwhile,
  and the seconds from the signal to the first input stored from worker 1's partitions after it exited
  (worker 1's session timeout is :data:`RESTART_SESSION_S`: its restart must fit in it);
* **graceful stop**: worker 1 gets SIGTERM and leaves the group; seconds from the signal to the first input
  stored from its partitions after it left (worker 0 saw the rebalance begin; so by worker 0), how long it
  took to leave and to exit;
* **failover**: worker 2 joins, then gets SIGKILL; seconds to the first input stored from its partitions.

Then production stops and the run must end exact: the destination holds every expected input id, once, and
worker 0's ledger (it holds every partition by then) balances.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import sqlite3
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.loops import PRODUCED_AT
from bench.scenarios import PARTITIONS, Bench, Outcome, error_lines
from bench.stack import Stack
from bench.workload import DESTINATION_APP, DESTINATION_USER, fresh
from streams.core import ledger as outcome
from streams.core.ids import input_id
from streams.core.simulate import offline_index, simulate
from streams.services.destination.store import Store
from streams.tools.localstack import Service, get_json, stop_process
from streams.worker.faust_tuning import keyed_partition

EVENT_ID = "bench_event_id"
"""The metadata field the rebalance producer stamps with the event's id."""
RTT_S = 0.02  # the destination answers each request this much later, like a hosted API
STOP_TIMEOUT_S = 60.0
RESTART_SESSION_S = 15
"""The session timeout of the restarted worker: a restart took 7-11 s on the 2-core bench machine under load,
longer than the 6 s default, and a static member whose session expires is replaced by a rebalance."""
IN_FLIGHT_S = RTT_S + 0.2
"""Inputs stored this soon after a worker exited may be its own last request, answered late: not counted."""
OUTCOMES = {outcome.POSTED, outcome.DUPLICATE, outcome.DEAD_LETTERED, outcome.DROPPED}
TARGETS: dict[str, tuple[str, float]] = {
    "failover_s": ("<=", 10),
    "join_pause_s": ("<=", 5),
    "graceful_handover_s": ("<=", 5),
    "restart_rebalances_of_others": ("<=", 0),
}


@dataclass(slots=True)
class Producer:
    """Events at a steady rate from a thread, until stopped; every line sent is kept (for the expectation)."""

    bootstrap: str
    topic: str
    source: Iterator[dict[str, Any]]
    rate: float
    lines: list[bytes] = field(default_factory=list)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rebalance-producer", daemon=True)
        self._thread.start()

    def stop(self) -> list[bytes]:
        """Stop producing; every line sent (and acknowledged by the broker)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error
        return self.lines

    def _run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as exc:  # reported by stop()
            self.error = exc

    async def _produce(self) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            started, sent, pending = time.monotonic(), 0, []
            while not self._stop.is_set():
                due = int(self.rate * (time.monotonic() - started)) + 1
                for event in (next(self.source) for _ in range(due - sent)):
                    metadata = event["output"]["input"]["data"]["metadata"]
                    metadata[PRODUCED_AT], metadata[EVENT_ID] = time.time_ns(), event["id"]
                    line = orjson.dumps(event)
                    pending.append(await producer.send(self.topic, line, key=event["id"].encode()))
                    self.lines.append(line)
                sent = due
                await asyncio.sleep(0.01)
            for delivery in await asyncio.gather(*pending, return_exceptions=True):
                if isinstance(delivery, BaseException):
                    raise delivery
        finally:
            await producer.stop()


@dataclass(frozen=True, slots=True)
class Stored:
    """An input the destination holds: when it was stored, and the partitions it came through."""

    at: float  # epoch seconds
    input_id: str
    predictions_partition: int
    queue_partition: int


class Trace:
    """Stored inputs traced to their partitions: the event id stamped in the input's metadata gives the
    predictions partition; the collector whose input id matches gives the queue partition."""

    def __init__(self, config: Path, predictions: str, queue: str) -> None:
        self.collectors = [collector.id for collector in offline_index(config)]
        self.predictions, self.queue = predictions, queue
        everything = list(range(PARTITIONS))
        self.queue_partition = {c: keyed_partition(c.encode(), everything, everything) for c in self.collectors}
        self._stored: list[Stored] = []
        self._last_row = 0

    def read(self, db: Path) -> list[Stored]:
        """Every input stored so far, in the order stored (the rows added since the last read are traced)."""
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
            rows = connection.execute(
                "SELECT rowid, input_id, created_at, json_extract(data, ?) FROM inputs"
                " WHERE user_id = ? AND app_id = ? AND rowid > ? ORDER BY rowid",
                (f"$.metadata.{EVENT_ID}", DESTINATION_USER, DESTINATION_APP, self._last_row),
            ).fetchall()
        everything = list(range(PARTITIONS))
        for row, stored_id, created_at, event_id in rows:
            collector = next(c for c in self.collectors if input_id(c, event_id) == stored_id)
            self._stored.append(
                Stored(
                    at=_epoch(created_at),
                    input_id=stored_id,
                    predictions_partition=keyed_partition(event_id.encode(), everything, everything),
                    queue_partition=self.queue_partition[collector],
                )
            )
            self._last_row = row
        return list(self._stored)

    def of(self, held: set[tuple[str, int]]) -> Callable[[Stored], bool]:
        """Whether a stored input came through one of the ``(topic, partition)`` pairs ``held``."""
        return lambda s: (self.predictions, s.predictions_partition) in held or (self.queue, s.queue_partition) in held

    def only(self, held: set[tuple[str, int]]) -> Callable[[Stored], bool]:
        """Whether a stored input came through the ``(topic, partition)`` pairs ``held`` alone."""
        return lambda s: (self.predictions, s.predictions_partition) in held and (self.queue, s.queue_partition) in held


def _epoch(created_at: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(created_at).timestamp()


def longest_gap(stored: list[Stored], since: float, until: float) -> float:
    """The longest time within [since, until] (epoch seconds) in which no input in ``stored`` was stored."""
    times = [since, *(s.at for s in stored if since < s.at < until), until]
    return round(max(b - a for a, b in itertools.pairwise(times)), 2)


def first_after(stored: list[Stored], since: float, wanted: Callable[[Stored], bool]) -> float | None:
    """Seconds from ``since`` to the first input stored after it that ``wanted`` accepts."""
    return next((round(s.at - since, 2) for s in stored if s.at > since and wanted(s)), None)


def ask(worker: Service, path: str, timeout_s: float = 60) -> Any:
    """GET a worker's JSON page, asking again while it does not answer (a loaded worker's loop can stall for
    seconds: it answered nothing for 4.7 s while selecting a backlog on the bench machine at load 23)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return get_json(f"{worker.url}{path}", timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def held(worker: Service) -> set[tuple[str, int]]:
    """The ``(topic, partition)`` pairs of the agents' topics the worker holds now."""
    positions: dict[str, Any] = ask(worker, "/collectors/partitions/")
    pairs = set()
    for name in positions:
        topic, _, number = name.rpartition(":")
        pairs.add((topic, int(number)))
    return pairs


def group(worker: Service) -> dict[str, Any]:
    """The worker's view of its consumer group (``/collectors/group/``): generation, rebalances, member."""
    answer: dict[str, Any] = ask(worker, "/collectors/group/")
    return answer


def wait_stable(workers: list[Service], topics: set[str], *, timeout_s: float) -> float:
    """Wait until the workers hold every partition of ``topics`` once between them, all at one generation,
    and nothing changed for 1 s; the epoch time it became so."""
    deadline = time.monotonic() + timeout_s
    wanted = {(topic, n) for topic in topics for n in range(PARTITIONS)}
    stable_since: float | None = None
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            assignments = [held(worker) for worker in workers]
            generations = {group(worker)["generation"] for worker in workers}
            union = set().union(*assignments)
            state = (generations, [sorted(a) for a in assignments])
            complete = union == wanted and sum(map(len, assignments)) == len(wanted) and len(generations) == 1
            if complete and all(assignments) and state == last:
                if stable_since is not None and time.time() - stable_since >= 1.0:
                    return stable_since
            else:
                stable_since = None
            if complete and all(assignments) and stable_since is None:
                stable_since = time.time()
            last = state
        time.sleep(0.2)
    raise TimeoutError(f"the group was not stable within {timeout_s:.0f}s")


def wait_for(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if condition():
                return
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


def stop(stack: Stack, worker: Service, signum: int, watch: Service | None = None) -> tuple[float, float]:
    """Send ``signum`` to the worker and wait for it to exit; the epoch times of the signal and of the exit,
    or, given a worker to ``watch``, of the moment that one saw a rebalance begin, when earlier (the stopped
    worker left the group; its agents stopped before)."""
    rebalances = group(watch)["rebalances"] if watch is not None else 0
    at = time.time()
    worker.process.send_signal(signum)
    left: float | None = None
    if watch is not None:
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while left is None and worker.process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if get_json(f"{watch.url}/collectors/group/", timeout=10)["rebalances"] > rebalances:
                    left = time.time()
            time.sleep(0.05)
    try:
        worker.process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        stop_process(worker.process, 0)
    stack.workers.remove(worker)
    exited = time.time()
    return at, exited if left is None else min(left, exited)


def handover(stack: Stack, trace: Trace, mine: set[tuple[str, int]], signalled: float, exited: float) -> float:
    """Seconds from the signal to the first input stored from the partitions ``mine`` after the worker
    exited or left the group (so by another worker; :data:`IN_FLIGHT_S` after it left out)."""
    since = exited + IN_FLIGHT_S

    def taken_over() -> bool:
        return first_after(trace.read(stack.db), since, trace.of(mine)) is not None

    wait_for(taken_over, timeout_s=180, what="inputs from the stopped worker's partitions")
    first = first_after(trace.read(stack.db), since, trace.of(mine))
    assert first is not None
    return round(first + since - signalled, 2)


def join(
    stack: Stack, trace: Trace, topics: set[str], number: int, env: dict[str, str], settle_s: float = 5.0
) -> tuple[Service, float]:
    """Start worker ``number``; once the group is stable again (and ``settle_s`` later), the longest time in
    which no input was stored since it was started."""
    joined_at = time.time()
    worker = stack.spawn(number, env)
    wait_stable(stack.workers, topics, timeout_s=180)
    time.sleep(settle_s)
    return worker, longest_gap(trace.read(stack.db), joined_at, time.time())


def run_rebalance(bench: Bench, *, config: Path, pool: list[dict[str, Any]], rate: float, name: str) -> Outcome:
    """One run of the four phases (module docstring); the figures, and whether the run ended exact."""
    topic = f"{bench.run_id}-{name}-predictions"
    asyncio.run(_create(bench.bootstrap, topic))
    stay = {"COLLECTORS_LEAVE_GROUP_ON_STOP": "false"}
    restarted = {"COLLECTORS_WORKER_ID": "w1", "COLLECTORS_SESSION_TIMEOUT_S": str(RESTART_SESSION_S)}
    figures: dict[str, Any] = {"rate_events_per_s": rate, "restart_session_timeout_s": RESTART_SESSION_S}
    with bench.stack(name=name, topic=topic, config=config, workers=0, initial_faults={"delay_s": RTT_S}) as stack:
        topics = {topic, stack.queue_topic}
        trace = Trace(config, topic, stack.queue_topic)
        producer = Producer(bench.bootstrap, topic, fresh(pool, f"{bench.run_id}-{name}"), rate)
        producer.start()
        try:
            w0 = stack.spawn(0, {"COLLECTORS_WORKER_ID": "w0", **stay})
            wait_stable([w0], topics, timeout_s=180)
            wait_for(lambda: stack.served()["inputs"]["stored"] > 0, timeout_s=60, what="the first inputs")

            # join: a second worker, which will be restarted keeping its membership
            w1, figures["join_pause_s"] = join(stack, trace, topics, 1, {**restarted, **stay})

            # restart of worker 1 with the same id (started again to leave the group on its next stop)
            before = group(w0)
            mine, others = held(w1), held(w0)
            signalled, exited = stop(stack, w1, signal.SIGTERM)
            w1 = stack.spawn(1, restarted)
            figures["restart_back_s"] = handover(stack, trace, mine, signalled, exited)
            figures["restart_rebalances_of_others"] = group(w0)["rebalances"] - before["rebalances"]
            figures["restart_others_pause_s"] = longest_gap(
                [s for s in trace.read(stack.db) if trace.only(others)(s)], signalled, time.time()
            )
            wait_stable([w0, w1], topics, timeout_s=180)
            figures["restart_kept_partitions"] = held(w1) == mine

            # graceful stop of worker 1
            mine = held(w1)
            signalled, left = stop(stack, w1, signal.SIGTERM, watch=w0)
            figures["graceful_exit_s"] = round(time.time() - signalled, 2)
            figures["graceful_left_s"] = round(left - signalled, 2)
            figures["graceful_handover_s"] = handover(stack, trace, mine, signalled, left)
            wait_stable([w0], topics, timeout_s=180)

            # failover: a new worker joins, then is killed
            w2, figures["join_again_pause_s"] = join(stack, trace, topics, 2, {"COLLECTORS_WORKER_ID": "w2"})
            mine = held(w2)
            signalled, exited = stop(stack, w2, signal.SIGKILL)
            figures["failover_s"] = handover(stack, trace, mine, signalled, exited)
        finally:
            lines = producer.stop()
        check, text = _exact(stack, config, lines, trace)
        figures["events"] = len(lines)
        figures["worker_log_error_lines"], figures["worker_log_first_errors"] = error_lines(
            [service.log for service in stack.started]
        )
    return Outcome(check=check, check_text=text, extra=figures)


async def _create(bootstrap: str, topic: str) -> None:
    from streams.kafka.producing import ensure_topic

    await ensure_topic(bootstrap, topic, PARTITIONS)


def _exact(stack: Stack, config: Path, lines: list[bytes], trace: Trace) -> tuple[bool, str]:
    """Whether the destination holds exactly the expected ids, once each, and the ledger balances."""
    report = asyncio.run(simulate(offline_index(config), lines))
    expected = {input_id(c, e) for c, ids in report.selected.items() for e in ids}
    settled = stack.settle(events=len(lines), timeout_s=300)
    with Store(stack.db) as store:
        count = store.count_inputs(DESTINATION_USER, DESTINATION_APP)
    stored = {s.input_id for s in trace.read(stack.db)}
    balanced = _balanced(settled, len(lines))
    ok = stored == expected and count == len(stored) and balanced is None
    text = (
        f"stored {len(stored):,} / expected {len(expected):,} (missing {len(expected - stored)}, unexpected "
        f"{len(stored - expected)}, stored twice {count - len(stored)}); ledger {balanced or 'balanced'}"
    )
    return ok, text


def _balanced(snapshot: dict[str, Any], events_in: int) -> str | None:
    """None when events in = their outcomes and every queue record has one outcome; else what is off."""
    counts = snapshot["events"]
    if counts.get(outcome.EVENTS, 0) != events_in:
        return f"{counts.get(outcome.EVENTS, 0)} events counted of {events_in}"
    for cid, funnel in snapshot["collectors"].items():
        records = funnel.get(outcome.QUEUED, 0) + funnel.get(outcome.REQUEUED, 0)
        done = sum(n for k, n in funnel.items() if k in OUTCOMES or k.startswith(outcome.POST_FILTERED_PREFIX))
        if records != done:
            return f"{cid}: {records} queue records, {done} outcomes"
    return None


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs, with its values (the spread)."""
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    result: dict[str, Any] = {}
    for key in keys:
        values = [run[key] for run in runs if isinstance(run.get(key), int | float)]
        if values:
            result[key] = {"median": round(statistics.median(values), 2), "values": values}
    return result
