"""``make bench``: the worker's throughput next to plain aiokafka loops and a naive Faust agent, on one topic.

Starts its own Kafka broker (port 39392 by default, data in a temporary directory), fills a topic with N
generated prediction events, then measures in turn: raw (consume + decode), baseline A (consume, decode,
select, produce survivors), the real worker posting to the reference destination (pipeline), and the naive
Faust agent (baseline B). Checks each variant's output against ``streams.simulate``. Prints a table, and as
its last line one JSON object. Exit status 1 when a check fails.

    .venv/bin/python -m bench.run [--quick | --events N] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

if not __package__:  # run as `python bench/run.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from bench import loops
from bench.loops import Stopwatch, Window
from bench.workload import (
    DESTINATION_APP,
    DESTINATION_USER,
    KEY_ENV,
    Expectation,
    event_lines,
    expect,
    write_collectors,
)
from streams.destination.store import Store
from streams.localkafka.broker import DIST_ENV, LocalKafka, default_home
from streams.localstack import (
    Service,
    free_port,
    get_json,
    start_destination,
    start_worker,
    stop_process,
    wait_settled,
    worker_stats,
)
from streams.producing import ensure_topic
from streams.simulate import offline_index

DEFAULT_EVENTS = 200_000
QUICK_EVENTS = 20_000
DEFAULT_KAFKA_PORT = 39392
PARTITIONS = 4
NAIVE_SCRIPT = Path(__file__).resolve().with_name("naive_faust.py")
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL|Traceback)\b")
TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LATER = ("collectors_1000_vs_10", "p99_latency_ms", "stalled_peak_rss_mb", "batching_vs_single")


@dataclass(slots=True)
class Outcome:
    """One variant's measurement, its correctness check, and anything else worth reporting."""

    window: Window
    check: bool
    check_text: str
    extra: dict[str, Any] = field(default_factory=dict)


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _timeout_s(events: int) -> float:
    """A bound for one phase: generous for a ~2,000 events/s variant on a busy 2-core machine."""
    return 120 + events / 400


def _error_lines(log: Path, limit: int = 5) -> tuple[int, list[str]]:
    """How many lines of a log look like errors, and the first few (terminal control codes removed)."""
    try:
        text = TERMINAL_CODES.sub("", log.read_text(errors="replace"))
    except OSError:
        return 0, []
    lines = [line.strip() for line in text.splitlines() if ERROR_LINE.search(line)]
    return len(lines), lines[:limit]


def _wait_events(worker: Service, *, at_least: int, timeout_s: float) -> None:
    """Poll the worker's stats every 50 ms until it has read ``at_least`` events."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if worker_stats(worker)["events"].get("events", 0) >= at_least:
                return
        time.sleep(0.05)
    raise TimeoutError(f"the worker read fewer than {at_least:,} events in {timeout_s:.0f}s:\n{worker.log_tail()}")


def run_pipeline(
    *,
    bootstrap: str,
    topic: str,
    run_id: str,
    config: Path,
    destination_port: int,
    workdir: Path,
    events: int,
    expected: Expectation,
    broker: psutil.Process,
) -> Outcome:
    """The real worker and destination as processes; time from the worker's first event to settled."""
    key = f"bench-{secrets.token_hex(12)}"
    db = workdir / "destination.db"
    with Store(db) as store:
        store.bootstrap(DESTINATION_USER, DESTINATION_APP, key, ["PostInputs"])
    queue_topic = f"{run_id}-queue"
    env = {
        KEY_ENV: key,
        "COLLECTORS_PREDICTIONS_TOPIC": topic,
        "COLLECTORS_QUEUE_TOPIC": queue_topic,
        "COLLECTORS_DEAD_LETTER_TOPIC": f"{run_id}-dead-letters",
    }
    destination = start_destination(db, port=destination_port, log=workdir / "destination.log")
    try:
        worker = start_worker(
            config, broker=f"kafka://{bootstrap}", app_id=f"{run_id}-worker", data_dir=workdir / "worker", env=env
        )
        try:
            healthy = time.monotonic()
            watch = Stopwatch(
                {
                    "worker": psutil.Process(worker.process.pid),
                    "destination": psutil.Process(destination.process.pid),
                    "broker": broker,
                }
            )
            _wait_events(worker, at_least=1, timeout_s=120)
            watch.start()
            first = time.monotonic()
            _wait_events(worker, at_least=events, timeout_s=_timeout_s(events))
            read_all_s = time.monotonic() - first
            settled = wait_settled([worker], events=events, timeout_s=_timeout_s(events))
            window = watch.stop(events)
            served = get_json(f"{destination.url}/_stats")
        finally:
            worker.stop()
    finally:
        destination.stop()
    with Store(db) as store:
        stored = store.count_inputs(DESTINATION_USER, DESTINATION_APP)
    queued = asyncio.run(loops.topic_size(bootstrap, queue_topic, PARTITIONS))
    requests = sum(served["batch_sizes"].values())
    errors, first_errors = _error_lines(worker.log)
    return Outcome(
        window=window,
        check=stored == expected.posted and queued == expected.queued,
        check_text=f"stored {stored:,} / expected {expected.posted:,}; queue topic {queued:,} / {expected.queued:,}",
        extra={
            "startup_to_first_event_s": round(first - healthy, 2),
            "first_to_last_event_read_s": round(read_all_s, 2),
            "first_event_to_settled_s": round(window.seconds, 2),
            "destination_requests": requests,
            "mean_batch_size": round(sum(served["inputs"].values()) / requests, 1) if requests else None,
            "batch_sizes": served["batch_sizes"],
            "worker_posted": sum(c.get("posted", 0) for c in settled["collectors"].values()),
            "worker_log": str(worker.log),
            "worker_log_error_lines": errors,
            "worker_log_first_errors": first_errors,
        },
    )


def run_naive(
    *,
    bootstrap: str,
    topic: str,
    run_id: str,
    config: Path,
    workdir: Path,
    events: int,
    expected: Expectation,
    broker: psutil.Process,
) -> Outcome:
    """Baseline B as its own process; it times itself from its first to its N-th event (producer flushed)."""
    queue_topic = f"{run_id}-naive-queue"
    asyncio.run(ensure_topic(bootstrap, queue_topic, PARTITIONS))
    progress = workdir / "naive-progress.json"
    env = {
        "BENCH_NAIVE_BROKER": f"kafka://{bootstrap}",
        "BENCH_NAIVE_APP_ID": f"{run_id}-naive",
        "BENCH_NAIVE_TOPIC": topic,
        "BENCH_NAIVE_QUEUE": queue_topic,
        "BENCH_NAIVE_CONFIG": str(config),
        "BENCH_NAIVE_EVENTS": str(events),
        "BENCH_NAIVE_PROGRESS": str(progress),
        "BENCH_NAIVE_DATA_DIR": str(workdir / "naive-data"),
    }
    log = workdir / "naive.log"
    command = [sys.executable, str(NAIVE_SCRIPT), "worker", "-l", "warn", "--web-port", str(free_port())]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
    watch = Stopwatch({"broker": broker})
    deadline = time.monotonic() + _timeout_s(events)
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
                problem = (
                    f"exited with {process.returncode}" if exited else f"did not finish in {_timeout_s(events):.0f}s"
                )
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
    queued = asyncio.run(loops.topic_size(bootstrap, queue_topic, PARTITIONS))
    return Outcome(
        window=window,
        check=state["survivors"] == expected.queued and queued == expected.queued,
        check_text=f"sent {state['survivors']:,}, queue topic {queued:,} / expected {expected.queued:,}",
        extra={"log": str(log)},
    )


def run_loops(
    *, bootstrap: str, topic: str, run_id: str, config: Path, events: int, expected: Expectation, broker: psutil.Process
) -> tuple[Outcome, Outcome]:
    """Raw and baseline A, in this process."""
    me = psutil.Process()
    timeout_s = _timeout_s(events)
    raw = asyncio.run(
        loops.raw(
            bootstrap,
            topic,
            events,
            partitions=PARTITIONS,
            watch=Stopwatch({"process": me, "broker": broker}),
            timeout_s=timeout_s,
        )
    )
    queue_topic = f"{run_id}-baseline-a-queue"
    asyncio.run(ensure_topic(bootstrap, queue_topic, PARTITIONS))
    window, survivors = asyncio.run(
        loops.baseline_a(
            bootstrap,
            topic,
            queue_topic,
            events,
            offline_index(config),
            partitions=PARTITIONS,
            watch=Stopwatch({"process": me, "broker": broker}),
            timeout_s=timeout_s,
        )
    )
    queued = asyncio.run(loops.topic_size(bootstrap, queue_topic, PARTITIONS))
    baseline = Outcome(
        window=window,
        check=survivors == expected.queued and queued == expected.queued,
        check_text=f"sent {survivors:,}, queue topic {queued:,} / expected {expected.queued:,}",
    )
    return Outcome(window=raw, check=raw.events == events, check_text=f"read {raw.events:,}"), baseline


def measure(*, events: int, seed: int, kafka_port: int, workdir: Path) -> dict[str, Any]:
    """Run every variant once on one topic; return the results as a JSON-ready mapping."""
    _say(f"generating {events:,} events (seed {seed})")
    lines, keys = event_lines(events, seed=seed)
    destination_port = free_port()
    config = write_collectors(workdir / "collectors.yaml", base_url=f"http://127.0.0.1:{destination_port}")
    _say("computing the expected outcome with streams.simulate")
    expected = expect(config, lines)
    dist = Path(os.environ.get(DIST_ENV) or default_home() / "dist")
    kafka = LocalKafka(port=kafka_port, home=workdir / "kafka", dist=dist)
    kafka.up()
    try:
        pid = kafka.status().pid
        assert pid is not None
        broker = psutil.Process(pid)
        bootstrap = kafka.bootstrap_servers
        run_id = f"bench-{int(time.time())}"
        topic = f"{run_id}-predictions"
        started = time.monotonic()
        asyncio.run(loops.fill_topic(bootstrap, topic, lines, keys, partitions=PARTITIONS))
        publish_s = time.monotonic() - started
        del lines, keys
        common: dict[str, Any] = {"bootstrap": bootstrap, "topic": topic, "run_id": run_id, "config": config}
        common |= {"events": events, "expected": expected, "broker": broker}
        _say("raw and baseline A (aiokafka loops in this process)")
        outcomes: dict[str, Outcome] = dict(zip(("raw", "baseline_a"), run_loops(**common), strict=True))
        _say("pipeline (the worker and the reference destination)")
        outcomes["pipeline"] = run_pipeline(destination_port=destination_port, workdir=workdir, **common)
        _say("naive Faust agent (baseline B)")
        outcomes["naive"] = run_naive(workdir=workdir, **common)
    finally:
        kafka.down()
    return report(outcomes, events=events, expected=expected, publish_s=publish_s)


def _rate(outcome: Outcome) -> float:
    return round(outcome.window.events_per_s, 1)


def _ratio(a: Outcome, b: Outcome) -> float:
    return round(a.window.events_per_s / b.window.events_per_s, 3)


def _us(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def report(outcomes: dict[str, Outcome], *, events: int, expected: Expectation, publish_s: float) -> dict[str, Any]:
    """The results: ratios, CPU per event, checks, pipeline details, placeholders for later measurements."""
    raw, pipeline = outcomes["raw"], outcomes["pipeline"]
    result: dict[str, Any] = {
        "events": events,
        "raw_events_per_s": _rate(raw),
        "baseline_a_events_per_s": _rate(outcomes["baseline_a"]),
        "naive_events_per_s": _rate(outcomes["naive"]),
        "pipeline_events_per_s": _rate(pipeline),
        "pipeline_vs_raw": _ratio(pipeline, raw),
        "pipeline_vs_naive": _ratio(pipeline, outcomes["naive"]),
        "pipeline_vs_baseline_a": _ratio(pipeline, outcomes["baseline_a"]),
        **dict.fromkeys(LATER),
        "cpu_us_per_event": {
            name: {process: _us(o.window.cpu_us_per_event(process)) for process in o.window.cpu}
            for name, o in outcomes.items()
        },
        "simulate_events_per_s": round(events / expected.simulate_s, 1),
        "expected_queued": expected.queued,
        "expected_posted": expected.posted,
        "publish_s": round(publish_s, 1),
        "checks": {name: o.check for name, o in outcomes.items()},
        "check_details": {name: o.check_text for name, o in outcomes.items()},
        "correct": all(o.check for o in outcomes.values()),
        "pipeline": pipeline.extra,
        "machine": {
            "nproc": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return result


def table(result: dict[str, Any]) -> str:
    """The human-readable summary printed before the JSON line."""
    names = {"raw": "raw", "baseline_a": "baseline A", "pipeline": "pipeline", "naive": "naive (B)"}
    rows = [f"{'variant':<12} {'events/s':>10} {'vs raw':>7} {'CPU µs/ev':>10} {'broker µs/ev':>13}  check"]
    for key, name in names.items():
        rate = result[f"{key}_events_per_s"]
        cpu = result["cpu_us_per_event"][key]
        own = cpu.get("process", cpu.get("worker"))
        verdict = "ok" if result["checks"][key] else "FAILED"
        rows.append(
            f"{name:<12} {rate:>10,.0f} {rate / result['raw_events_per_s']:>7.3f} {own or 0:>10.1f} "
            f"{cpu.get('broker') or 0:>13.1f}  {verdict}: {result['check_details'][key]}"
        )
    details = result["pipeline"]
    rows.append(
        f"\npipeline: destination CPU {result['cpu_us_per_event']['pipeline'].get('destination')} µs/event, "
        f"{details['destination_requests']:,} requests, mean batch {details['mean_batch_size']}, "
        f"{details['startup_to_first_event_s']}s from healthz to the first event, all read after "
        f"{details['first_to_last_event_read_s']}s, settled after {details['first_event_to_settled_s']}s, "
        f"{details['worker_log_error_lines']} error lines in {details['worker_log']}"
    )
    rows.extend(f"  {line}" for line in details["worker_log_first_errors"])
    rows.append(
        f"offline (streams.simulate: decode, validate, select): {result['simulate_events_per_s']:,.0f} events/s; "
        f"expected {result['expected_queued']:,} queued, {result['expected_posted']:,} posted"
    )
    return "\n".join(rows)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="events in the topic [%(default)s]")
    parser.add_argument("--quick", action="store_true", help=f"smoke check with {QUICK_EVENTS:,} events")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated events [%(default)s]")
    parser.add_argument("--kafka-port", type=int, default=DEFAULT_KAFKA_PORT, help="broker port [%(default)s]")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, broker data)")
    args = parser.parse_args(argv)
    events = QUICK_EVENTS if args.quick else args.events
    workdir = Path(tempfile.mkdtemp(prefix="collectors-bench-"))
    signal.signal(signal.SIGTERM, _terminate)
    result: dict[str, Any] | None = None
    try:
        result = measure(events=events, seed=args.seed, kafka_port=args.kafka_port, workdir=workdir)
    finally:
        if args.keep or result is None or not result["correct"]:
            _say(f"logs and data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(result))
    print(json.dumps(result), flush=True)
    return 0 if result["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
