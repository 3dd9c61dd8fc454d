"""The measured variants: each runs against the bench's broker, checks its own output, and returns an Outcome.

* ``run_raw``, ``run_baseline_a``: the aiokafka loops (:mod:`bench.loops`) in this process.
* ``run_pipeline``: workers and the reference destination as processes, timed from the first event read to
  settled; also the scaling run (1,000 collectors) and two workers in one group.
* ``run_naive``: baseline B (:mod:`bench.naive_faust`) as its own process.
* ``run_latency``: events produced at a steady rate; produced → stored per input, from the destination's
  database.
* ``run_memory``: the destination down while events arrive at full rate; the worker's peak RSS.
* ``run_posting``: inputs/s delivered with batching against one input per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import psutil

from bench import loops
from bench.loops import PRODUCED_AT, Stopwatch, Window
from bench.stack import Stack, mean_batch, running, stored_inputs
from bench.workload import DESTINATION_APP, DESTINATION_USER, Expectation, fresh
from streams.core.simulate import offline_index
from streams.kafka.producing import ensure_topic
from streams.services.destination.store import Store
from streams.tools.localstack import free_port, stop_process

PARTITIONS = 4
NAIVE_SCRIPT = Path(__file__).resolve().with_name("naive_faust.py")
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL|Traceback)\b")
TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RSS_INTERVAL_S = 0.2
T = TypeVar("T")


@dataclass(slots=True)
class Outcome:
    """One variant's measurement (a window of events when it has one), its correctness check, and details."""

    check: bool
    check_text: str
    window: Window | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Bench:
    """What every variant needs: the broker, this run's id and directory, and the destination's port."""

    bootstrap: str
    run_id: str
    workdir: Path
    broker: psutil.Process
    destination_port: int

    def stack(self, *, name: str, topic: str, config: Path, **options: Any) -> contextlib.AbstractContextManager[Stack]:
        """Destination and workers for the variant ``name`` (see :func:`bench.stack.running`)."""
        return running(
            bootstrap=self.bootstrap,
            topic=topic,
            name=f"{self.run_id}-{name}",
            config=config,
            workdir=self.workdir,
            destination_port=self.destination_port,
            **options,
        )

    def topic_size(self, topic: str) -> int:
        return asyncio.run(loops.topic_size(self.bootstrap, topic, PARTITIONS))


def pooled(earlier: Outcome, later: Outcome) -> Outcome:
    """Runs of one variant as one: events, seconds and CPU summed (the rate over all), every check; the first
    run's details, with each run's rate and times under ``runs``. ``earlier`` may be a pooled outcome."""
    window = None
    if earlier.window is not None and later.window is not None:
        cpu = {name: earlier.window.cpu.get(name, 0.0) + later.window.cpu.get(name, 0.0) for name in earlier.window.cpu}
        window = Window(earlier.window.events + later.window.events, earlier.window.seconds + later.window.seconds, cpu)
    return Outcome(
        check=earlier.check and later.check,
        check_text=f"{earlier.check_text}; again: {later.check_text}",
        window=window,
        extra={**earlier.extra, "runs": [*earlier.extra.get("runs", [_run_figures(earlier)]), _run_figures(later)]},
    )


def _run_figures(outcome: Outcome) -> dict[str, Any]:
    return {
        "events_per_s": round(outcome.window.events_per_s, 1) if outcome.window else None,
        **{
            k: outcome.extra.get(k)
            for k in ("first_to_last_event_read_s", "first_event_to_settled_s", "longest_posting_pause_s")
        },
    }


def timeout_s(events: int) -> float:
    """A bound for one phase: generous for a ~2,000 events/s variant on a busy 2-core machine."""
    return 120 + events / 400


def error_lines(logs: list[Path], limit: int = 5) -> tuple[int, list[str]]:
    """How many lines of the logs look like errors, and the first few (terminal control codes removed)."""
    lines: list[str] = []
    for log in logs:
        with contextlib.suppress(OSError):
            text = TERMINAL_CODES.sub("", log.read_text(errors="replace"))
            lines += [line.strip() for line in text.splitlines() if ERROR_LINE.search(line)]
    return len(lines), lines[:limit]


def _survivors_check(sent: int, queued: int, expected: Expectation) -> tuple[bool, str]:
    return (
        sent == expected.queued and queued == expected.queued,
        f"sent {sent:,}, queue topic {queued:,} / expected {expected.queued:,}",
    )


def run_raw(bench: Bench, *, topic: str, events: int) -> Outcome:
    """Consume and decode the topic in this process."""
    watch = Stopwatch({"process": psutil.Process(), "broker": bench.broker})
    window = asyncio.run(
        loops.raw(bench.bootstrap, topic, events, partitions=PARTITIONS, watch=watch, timeout_s=timeout_s(events))
    )
    return Outcome(window=window, check=window.events == events, check_text=f"read {window.events:,}")


def run_baseline_a(bench: Bench, *, topic: str, config: Path, events: int, expected: Expectation) -> Outcome:
    """Baseline A in this process: consume, decode, ``select``, produce the survivors."""
    queue_topic = f"{bench.run_id}-baseline-a-queue"
    asyncio.run(ensure_topic(bench.bootstrap, queue_topic, PARTITIONS))
    window, survivors = asyncio.run(
        loops.baseline_a(
            bench.bootstrap,
            topic,
            queue_topic,
            events,
            offline_index(config),
            partitions=PARTITIONS,
            watch=Stopwatch({"process": psutil.Process(), "broker": bench.broker}),
            timeout_s=timeout_s(events),
        )
    )
    check, text = _survivors_check(survivors, bench.topic_size(queue_topic), expected)
    return Outcome(window=window, check=check, check_text=text)


def run_pipeline(
    bench: Bench, *, name: str, topic: str, config: Path, events: int, expected: Expectation, workers: int = 1
) -> Outcome:
    """The real workers and destination as processes; time from the first event read to settled.

    With one worker, settled is its ledger: all events read, every queued input with an outcome. With more,
    it is the destination holding every expected input, which does not depend on the workers' ledgers adding
    up across the rebalance a second worker joining causes (they did not at first: a worker's stats counted
    the partitions it gave away).
    """
    with bench.stack(name=name, topic=topic, config=config, workers=workers) as stack:
        healthy = time.monotonic()
        watch = Stopwatch({**stack.processes(), "broker": bench.broker})
        stack.wait_events(at_least=1, timeout_s=120)
        watch.start()
        first = time.monotonic()
        read_all_s: float | None = None
        if workers == 1:
            stack.wait_events(at_least=events, timeout_s=timeout_s(events))
            read_all_s = round(time.monotonic() - first, 2)
            stack.settle(events=events, timeout_s=timeout_s(events))
        else:
            stack.wait_stored(at_least=expected.posted, timeout_s=timeout_s(events))
        window = watch.stop(events)
        served = stack.served()
        pause_s = stack.longest_posting_pause_s(since=first) if workers == 1 else None
    stored = stored_inputs(stack.db)
    queued = bench.topic_size(stack.queue_topic)
    errors, first_errors = error_lines([worker.log for worker in stack.workers])
    return Outcome(
        window=window,
        check=stored == expected.posted and queued >= expected.queued and (workers > 1 or queued == expected.queued),
        check_text=f"stored {stored:,} / expected {expected.posted:,}; queue topic {queued:,} / {expected.queued:,}",
        extra={
            "workers": workers,
            "startup_to_first_event_s": round(first - healthy, 2),
            "first_to_last_event_read_s": read_all_s,
            "first_event_to_settled_s": round(window.seconds, 2),
            "longest_posting_pause_s": pause_s,
            "destination_requests": sum(served["batch_sizes"].values()),
            "mean_batch_size": mean_batch(served),
            "batch_sizes": served["batch_sizes"],
            "duplicates_answered": served["inputs"]["duplicate"],
            "worker_logs": [str(worker.log) for worker in stack.workers],
            "worker_log_error_lines": errors,
            "worker_log_first_errors": first_errors,
        },
    )


def run_naive(bench: Bench, *, topic: str, config: Path, events: int, expected: Expectation) -> Outcome:
    """Baseline B as its own process; it times itself from its first to its N-th event (producer flushed)."""
    queue_topic = f"{bench.run_id}-naive-queue"
    asyncio.run(ensure_topic(bench.bootstrap, queue_topic, PARTITIONS))
    progress = bench.workdir / "naive-progress.json"
    env = {
        "BENCH_NAIVE_BROKER": f"kafka://{bench.bootstrap}",
        "BENCH_NAIVE_APP_ID": f"{bench.run_id}-naive",
        "BENCH_NAIVE_TOPIC": topic,
        "BENCH_NAIVE_QUEUE": queue_topic,
        "BENCH_NAIVE_CONFIG": str(config),
        "BENCH_NAIVE_EVENTS": str(events),
        "BENCH_NAIVE_PROGRESS": str(progress),
        "BENCH_NAIVE_DATA_DIR": str(bench.workdir / "naive-data"),
    }
    log = bench.workdir / "naive.log"
    command = [sys.executable, str(NAIVE_SCRIPT), "worker", "-l", "warn", "--web-port", str(free_port())]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=bench.workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
    watch = Stopwatch({"broker": bench.broker})
    limit = timeout_s(events)
    deadline = time.monotonic() + limit
    try:
        while True:
            exited = process.poll() is not None
            state: dict[str, Any] = {}
            with contextlib.suppress(OSError, ValueError):
                state = json.loads(progress.read_text())
            if state.get("events", 0) > 0 and not watch.started:
                watch.start()
            if state.get("done"):
                break
            if exited or time.monotonic() > deadline:
                problem = f"exited with {process.returncode}" if exited else f"did not finish in {limit:.0f}s"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                raise RuntimeError(f"naive Faust agent {problem} at {state.get('events', 0):,} events:\n{tail}")
            time.sleep(0.1)
        broker_cpu = watch.stop(events).cpu["broker"]
    finally:
        stop_process(process)
    window = Window(
        events=events,
        seconds=state["last"] - state["first"],
        cpu={"process": state["cpu_last"] - state["cpu_first"], "broker": broker_cpu},
    )
    check, text = _survivors_check(state["survivors"], bench.topic_size(queue_topic), expected)
    return Outcome(window=window, check=check, check_text=text, extra={"log": str(log)})


def _prime(bench: Bench, topic: str, source: Iterator[dict[str, Any]]) -> None:
    """Create ``topic`` with one event in it, so a worker can show it is consuming before the clock starts."""
    event = next(source)
    line, key = orjson.dumps(event), event["id"].encode()
    asyncio.run(loops.fill_topic(bench.bootstrap, topic, [line], [key], partitions=PARTITIONS))


def _stored(db: Path) -> Iterator[tuple[float, dict[str, Any]]]:
    """Every input the bench's destination app holds, in insertion order: (stored at, epoch seconds; data)."""
    with Store(db) as store:
        page = 1
        while stored := store.list_inputs(DESTINATION_USER, DESTINATION_APP, page=page, per_page=10_000):
            for item in stored:
                yield datetime.fromisoformat(item.created_at).timestamp(), item.data
            page += 1


def _latencies_ms(db: Path, *, since_ns: int) -> list[float]:
    """Stored time minus produced time of every stored input produced at ``since_ns`` or later, sorted (ms)."""
    latencies: list[float] = []
    for stored_at, data in _stored(db):
        produced = (data.get("metadata") or {}).get(PRODUCED_AT)
        if isinstance(produced, int) and produced >= since_ns:
            latencies.append(stored_at * 1e3 - produced / 1e6)
    return sorted(latencies)


def percentile(ordered: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of sorted values (None when there are none)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _balanced(stack: Stack, settled: dict[str, Any]) -> tuple[bool, str, int]:
    """Whether the destination stored exactly what the workers counted as posted."""
    stored = stored_inputs(stack.db)
    posted = sum(c.get("posted", 0) for c in settled["collectors"].values())
    return stored == posted, f"settled; stored {stored:,} / worker posted {posted:,}", stored


def run_latency(
    bench: Bench, *, config: Path, pool: list[dict[str, Any]], rate: float, seconds: float, warmup_s: float
) -> Outcome:
    """Produce at ``rate`` for ``seconds`` to a running worker; per input, stored minus produced, after the warm-up."""
    name = "latency"
    topic = f"{bench.run_id}-{name}-predictions"
    source = fresh(pool, f"{bench.run_id}-{name}")
    _prime(bench, topic, source)
    with bench.stack(name=name, topic=topic, config=config) as stack:
        stack.wait_events(at_least=1, timeout_s=120)
        paced = asyncio.run(loops.produce_paced(bench.bootstrap, topic, source, rate=rate, seconds=seconds))
        settled = stack.settle(events=paced.sent + 1, timeout_s=timeout_s(paced.sent))
        served = stack.served()
    check, text, _stored = _balanced(stack, settled)
    latencies = _latencies_ms(stack.db, since_ns=paced.started_ns + int(warmup_s * 1e9))
    return Outcome(
        check=check and bool(latencies),
        check_text=f"{text}; {len(latencies):,} inputs after the warm-up",
        extra={
            "target_events_per_s": round(rate, 1),
            "produced_events_per_s": round(paced.events_per_s, 1),
            "produced": paced.sent,
            "seconds": round(paced.seconds, 1),
            "warmup_s": warmup_s,
            "inputs_measured": len(latencies),
            "p50_ms": _ms(percentile(latencies, 0.50)),
            "p90_ms": _ms(percentile(latencies, 0.90)),
            "p99_ms": _ms(percentile(latencies, 0.99)),
            "max_ms": _ms(latencies[-1] if latencies else None),
            "mean_batch_size": mean_batch(served),
        },
    )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / 2**20


async def _sampling_rss(process: psutil.Process, work: Awaitable[T]) -> tuple[T, list[float]]:
    """Await ``work`` while sampling the process's RSS (MB) every :data:`RSS_INTERVAL_S`."""
    samples: list[float] = []

    async def sample() -> None:
        while True:
            samples.append(_rss_mb(process))
            await asyncio.sleep(RSS_INTERVAL_S)

    sampler = asyncio.create_task(sample())
    try:
        return await work, samples
    finally:
        sampler.cancel()


def run_memory(bench: Bench, *, config: Path, pool: list[dict[str, Any]], rate: float, seconds: float) -> Outcome:
    """The destination down for ``seconds`` while events arrive at ``rate``; the worker's RSS, then recovery."""
    name = "stalled"
    topic = f"{bench.run_id}-{name}-predictions"
    source = fresh(pool, f"{bench.run_id}-{name}")
    _prime(bench, topic, source)
    with bench.stack(name=name, topic=topic, config=config, faults=True) as stack:
        stack.wait_events(at_least=1, timeout_s=120)
        worker = psutil.Process(stack.workers[0].process.pid)
        before_mb = _rss_mb(worker)
        stored_before = stack.served()["inputs"]["stored"]
        stack.set_faults(down=True)
        try:
            produce = loops.produce_paced(bench.bootstrap, topic, source, rate=rate, seconds=seconds)
            paced, samples = asyncio.run(_sampling_rss(worker, produce))
            read_while_down = stack.events_read() - 1
            stored_while_down = stack.served()["inputs"]["stored"] - stored_before
        finally:
            stack.set_faults(down=False)
        restored = time.monotonic()
        settled = stack.settle(events=paced.sent + 1, timeout_s=timeout_s(paced.sent))
        recovery_s = time.monotonic() - restored
        after_mb = _rss_mb(worker)
    check, text, _stored = _balanced(stack, settled)
    return Outcome(
        check=check and stored_while_down == 0,
        check_text=f"{text}; {stored_while_down} stored while down",
        extra={
            "stalled_s": round(paced.seconds, 1),
            "target_events_per_s": round(rate, 1),
            "produced_events_per_s": round(paced.events_per_s, 1),
            "produced": paced.sent,
            "read_while_down": read_while_down,
            "rss_before_mb": round(before_mb, 1),
            "peak_rss_mb": round(max(samples), 1),
            "rss_samples": len(samples),
            "rss_after_recovery_mb": round(after_mb, 1),
            "recovery_s": round(recovery_s, 1),
        },
    )


def _wait_delivered(
    stack: Stack, watch: Stopwatch, *, until_inputs: int, max_s: float, limit_s: float
) -> Window | None:
    """Poll the destination every 0.1 s until ``until_inputs`` are stored, or ``max_s`` after the first was.

    ``watch`` runs from the first poll that shows an input stored to the last poll; the window's events are
    the inputs stored meanwhile, so its CPU per event is CPU per input posted (None: all were stored before
    the first poll, nothing was measured)."""
    deadline = time.monotonic() + limit_s
    first: float | None = None
    since = 0
    while (stored := stack.served()["inputs"]["stored"]) < until_inputs:
        now = time.monotonic()
        if first is None and stored > 0:
            first, since = now, stored
            watch.start()
        if first is not None and now - first >= max_s:
            break
        if now > deadline:
            raise TimeoutError(f"{stored:,} inputs stored in {limit_s:.0f}s, waiting for {until_inputs:,}")
        time.sleep(0.1)
    return watch.stop(stored - since) if watch.started else None


def _delivery_rate(db: Path, *, until_inputs: int, max_s: float) -> tuple[int, float]:
    """From the stored times: inputs stored after the first request's, up to ``until_inputs`` in all and within
    ``max_s`` of the first, and the seconds from the first request's to the last one's."""
    times = [stored_at for stored_at, _data in _stored(db)][:until_inputs]
    if not times:
        return 0, 0.0
    first = times[0]
    later = [t for t in times if first < t <= first + max_s]
    return len(later), (later[-1] - first) if later else 0.0


def _posting_run(
    bench: Bench,
    *,
    name: str,
    topic: str,
    queue: tuple[list[bytes], list[bytes]],
    config: Path,
    env: dict[str, str],
    until_inputs: int,
    max_s: float,
    rtt_s: float = 0.0,
) -> tuple[dict[str, Any], Stack]:
    faults = {"delay_s": rtt_s} if rtt_s else None
    values, keys = queue  # the run's queue topic, filled before its worker starts
    asyncio.run(loops.fill_topic(bench.bootstrap, f"{bench.run_id}-{name}-queue", values, keys, partitions=PARTITIONS))
    with bench.stack(name=name, topic=topic, config=config, env=env, initial_faults=faults) as stack:
        watch = Stopwatch({**stack.processes(), "broker": bench.broker})
        window = _wait_delivered(stack, watch, until_inputs=until_inputs, max_s=max_s, limit_s=timeout_s(until_inputs))
        served = stack.served()
    inputs, seconds = _delivery_rate(stack.db, until_inputs=until_inputs, max_s=max_s)
    figures = {
        "inputs": inputs,
        "seconds": round(seconds, 3),
        "inputs_per_s": round(inputs / seconds, 1) if seconds > 0 else None,
        "mean_batch_size": mean_batch(served),
        "batch_sizes": served["batch_sizes"],
        "cpu_us_per_input": window.cpu_us() if window is not None else None,
    }
    return figures, stack


def run_posting(
    bench: Bench,
    *,
    topic: str,
    queue: tuple[list[bytes], list[bytes]],
    config: Path,
    expected: Expectation,
    single_s: float,
    single_inputs: int,
    rtt_s: float,
) -> Outcome:
    """Inputs/s the posting agent delivers from a full queue (``queue``: the records selection made of the
    events; ``topic``, the predictions, stays empty), one collector keeping every event: default batches (the
    whole queue) against ``COLLECTORS_POST_BATCH_SIZE=1`` (``single_inputs`` inputs or ``single_s`` seconds,
    whichever comes first), same ``COLLECTORS_POST_CONCURRENCY``. Once on loopback, once with the destination
    answering each request ``rtt_s`` later (what a hosted API's round trip adds)."""
    extra: dict[str, Any] = {}
    ok = True
    texts = []
    for label, delay in (("", 0.0), ("_rtt", rtt_s)):
        batched, stack = _posting_run(
            bench,
            name=f"posting-batched{label}",
            topic=topic,
            queue=queue,
            config=config,
            env={},
            until_inputs=expected.posted,
            max_s=math.inf,
            rtt_s=delay,
        )
        stored = stored_inputs(stack.db)
        single, _ = _posting_run(
            bench,
            name=f"posting-single{label}",
            topic=topic,
            queue=queue,
            config=config,
            env={"COLLECTORS_POST_BATCH_SIZE": "1"},
            until_inputs=single_inputs,
            max_s=single_s,
            rtt_s=delay,
        )
        ok = ok and stored == expected.posted and single["mean_batch_size"] == 1.0 and single["inputs"] > 0
        texts.append(f"batched{label} stored {stored:,} / {expected.posted:,}; single mean {single['mean_batch_size']}")
        extra[f"batched{label}"], extra[f"single{label}"] = batched, single
    extra["rtt_ms"] = round(rtt_s * 1000)
    return Outcome(check=ok, check_text="; ".join(texts), extra=extra)
