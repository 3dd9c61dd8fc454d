"""A soak: steady load on one worker for a given time, sampled every 10 s, ending with the exactness check.

``make soak`` (``RATE=1500 MINUTES=60`` by default) starts a broker, the reference destination and a worker
running the benchmark's 10 collectors, produces ``RATE`` events/s for ``MINUTES`` minutes, and every 10 s
records the worker's memory (RSS), its CPU, the lag (events on the topic not yet read), the queue records
without an outcome, and how long reading the funnel from the ledger changelogs took (in this process, and
as ``collectors stats --json`` every minute). The samples go to ``soak.csv`` and ``soak.png`` in the output
directory; ``soak.json`` holds the summary: memory growth between the first and last 5 minutes, stats time
after 1 minute and at the end, the worker log's WARNING/ERROR lines, and the exactness check (every event
counted once, the ledger balanced, the destination holding exactly what the worker counted as posted).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import psutil
from aiokafka.errors import KafkaError

from bench import loops
from bench.loops import Paced
from bench.run import DEFAULT_KAFKA_PORT, _terminate
from bench.scenarios import PARTITIONS
from bench.stack import Stack, running, stored_inputs
from bench.workload import event_pool, fresh, write_collectors
from streams.core.ledger import Ledger
from streams.kafka.producing import ensure_topic
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import combined_ledger, free_port
from streams.tools.operations import balance, stats

SAMPLE_EVERY_S = 10.0
CLI_EVERY_S = 60.0
NOISY = re.compile(r"\[(WARNING|ERROR|CRITICAL)\]|Traceback")


@dataclass(frozen=True, slots=True)
class Sample:
    """One 10-second sample of the running worker."""

    t_s: float
    produced: int
    events_read: int
    lag_events: int
    pending: int
    worker_rss_mb: float
    worker_cpu_pct: float
    stats_s: float
    stats_records_read: int
    cli_stats_s: float | None
    cli_stats_cpu_s: float | None


class Producer(threading.Thread):
    """The paced producer, in a thread of its own (its own event loop)."""

    def __init__(self, bootstrap: str, topic: str, *, rate: float, seconds: float) -> None:
        super().__init__(daemon=True)
        self.args = (bootstrap, topic, fresh(event_pool(2_000, seed=7), f"soak-{int(time.time())}"))
        self.rate, self.seconds = rate, seconds
        self.result: Paced | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = asyncio.run(loops.produce_paced(*self.args, rate=self.rate, seconds=self.seconds))
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def _cli_stats_s(bootstrap: str, app_id: str) -> tuple[float, float]:
    """Wall time and CPU time (user and system) of ``collectors stats --json``, as an operator runs it: on a
    machine the load saturates, the wall time is mostly waiting for a core."""
    started, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "streams", "stats", "--json", "--broker", f"kafka://{bootstrap}", "--app-id", app_id],
        check=True,
        capture_output=True,
        timeout=120,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return round(time.monotonic() - started, 3), round(cpu, 3)


class CliTimer(threading.Thread):
    """Times ``collectors stats --json`` every :data:`CLI_EVERY_S`, beside the samples (it takes seconds on a
    busy machine, and must not delay them)."""

    def __init__(self, bootstrap: str, app_id: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.app_id = bootstrap, app_id
        self.done = threading.Event()
        self.latest: tuple[float, float] | None = None  # (wall, CPU) taken (and reset) by the next sample

        self.failures: list[str] = []  # each failed run's last line of error output

    def run(self) -> None:
        while True:
            try:
                self.latest = _cli_stats_s(self.bootstrap, self.app_id)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                lines = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
                self.failures.append(lines[-1] if lines else str(exc))
            if self.done.wait(CLI_EVERY_S):
                return

    def take(self) -> tuple[float, float] | None:
        latest, self.latest = self.latest, None
        return latest


def _sample(
    stack: Stack, bootstrap: str, topic: str, app_id: str, *, at: float, cli: tuple[float, float] | None
) -> Sample:
    worker = psutil.Process(stack.workers[0].process.pid)
    produced = asyncio.run(loops.topic_size(bootstrap, topic, PARTITIONS))
    ledger = combined_ledger(stack.workers, funnels=False)
    started = time.monotonic()
    latest = asyncio.run(stats.latest_ledgers(bootstrap, app_id))
    stats_s = round(time.monotonic() - started, 3)
    read = int(ledger.events.get("events", 0))
    return Sample(
        t_s=round(at, 1),
        produced=produced,
        events_read=read,
        lag_events=produced - read,
        pending=ledger.pending(),
        worker_rss_mb=round(worker.memory_info().rss / 2**20, 1),
        worker_cpu_pct=0.0,  # set by the caller from the CPU time between samples
        stats_s=stats_s,
        stats_records_read=latest.records_read,
        cli_stats_s=cli[0] if cli else None,
        cli_stats_cpu_s=cli[1] if cli else None,
    )


def _write_csv(path: Path, samples: Sequence[Sample]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(Sample)])
        writer.writeheader()
        writer.writerows(asdict(sample) for sample in samples)


def _plot(path: Path, samples: Sequence[Sample], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s.t_s / 60 for s in samples]
    figure, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    axes[0].plot(minutes, [s.worker_rss_mb for s in samples])
    axes[0].set_ylabel("worker RSS (MB)")
    axes[1].plot(minutes, [s.lag_events for s in samples], label="lag (events not read)")
    axes[1].plot(minutes, [s.pending for s in samples], label="queued, no outcome yet")
    axes[1].set_ylabel("records")
    axes[1].legend()
    axes[2].plot(minutes, [s.worker_cpu_pct for s in samples])
    axes[2].set_ylabel("worker CPU (% of a core)")
    cli = [(m, s) for m, s in zip(minutes, samples, strict=True) if s.cli_stats_s is not None]
    axes[3].plot(minutes, [s.stats_s for s in samples], label="latest_ledgers")
    axes[3].plot([m for m, _ in cli], [s.cli_stats_s for _, s in cli], "o-", label="collectors stats --json")
    axes[3].plot([m for m, _ in cli], [s.cli_stats_cpu_s for _, s in cli], "x:", label="... its CPU time")
    axes[3].set_ylabel("stats (s)")
    axes[3].set_xlabel("minutes")
    axes[3].legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def summary(samples: Sequence[Sample], minutes: float) -> dict[str, Any]:
    """Memory growth between the first and last 5 minutes (the first minute, the start-up, left out), and the
    funnel's read time after 1 minute and at the end."""
    window_s = min(300.0, minutes * 60 / 3)
    end = samples[-1].t_s if samples else 0.0
    first = [s.worker_rss_mb for s in samples if 60 <= s.t_s < 60 + window_s]
    last = [s.worker_rss_mb for s in samples if s.t_s >= end - window_s]
    first_mb, last_mb = _mean(first), _mean(last)
    growth = round((last_mb / first_mb - 1) * 100, 1) if first_mb and last_mb else None
    cli = [s for s in samples if s.cli_stats_s is not None]
    after_1min = next((s for s in cli if s.t_s >= 60), None)
    return {
        "rss_mb_first_window": first_mb,
        "rss_mb_last_window": last_mb,
        "rss_window_s": window_s,
        "memory_growth_pct": growth,
        "max_lag_events": max((s.lag_events for s in samples), default=None),
        "mean_worker_cpu_pct": _mean([s.worker_cpu_pct for s in samples[1:]]),
        "cli_stats_s_after_1min": after_1min.cli_stats_s if after_1min else None,
        "cli_stats_s_at_end": cli[-1].cli_stats_s if cli else None,
        "cli_stats_cpu_s_after_1min": after_1min.cli_stats_cpu_s if after_1min else None,
        "cli_stats_cpu_s_at_end": cli[-1].cli_stats_cpu_s if cli else None,
        "stats_s_max": max((s.stats_s for s in samples), default=None),
        "stats_records_read_max": max((s.stats_records_read for s in samples), default=None),
    }


def exactness(stack: Stack, settled: dict[str, Any], sent: int) -> tuple[bool, str]:
    """Every event counted once, the ledger balanced, the destination holding what the worker posted."""
    ledger = Ledger()
    ledger.merge_json(settled)
    balanced = balance.check(ledger)
    events = int(ledger.events.get("events", 0))
    posted = sum(c.get("posted", 0) for c in settled["collectors"].values())
    stored = stored_inputs(stack.db)
    text = (
        f"events counted {events:,} / produced {sent:,}; stored {stored:,} / worker posted {posted:,}; "
        f"ledger balanced: {balanced.balanced}"
    )
    return events == sent and stored == posted and balanced.balanced, text


def soak(*, rate: float, minutes: float, kafka_port: int, out: Path) -> dict[str, Any]:
    """Run the soak; write soak.csv, soak.png and soak.json into ``out``; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="collectors-soak-"))
    destination_port = free_port()
    config = write_collectors(workdir / "collectors.yaml", base_url=f"http://127.0.0.1:{destination_port}")
    kafka = LocalKafka(port=kafka_port, home=workdir / "kafka", dist=LocalKafka().dist)
    kafka.up()
    run_id = f"soak-{int(time.time())}"
    topic = f"{run_id}-predictions"
    samples: list[Sample] = []
    missed: list[str] = []
    try:
        asyncio.run(ensure_topic(kafka.bootstrap_servers, topic, PARTITIONS))
        with running(
            bootstrap=kafka.bootstrap_servers,
            topic=topic,
            name=run_id,
            config=config,
            workdir=workdir,
            destination_port=destination_port,
        ) as stack:
            app_id = f"{run_id}-worker"
            worker = psutil.Process(stack.workers[0].process.pid)
            producer = Producer(kafka.bootstrap_servers, topic, rate=rate, seconds=minutes * 60)
            timer = CliTimer(kafka.bootstrap_servers, app_id)
            started = time.monotonic()
            producer.start()
            timer.start()
            cpu_before, wall_before, due = loops.cpu_seconds(worker), started, started
            while producer.is_alive():
                due = max(due + SAMPLE_EVERY_S, time.monotonic())
                time.sleep(max(0.0, due - time.monotonic()))
                now = time.monotonic()
                try:
                    sample = _sample(stack, kafka.bootstrap_servers, topic, app_id, at=now - started, cli=timer.take())
                except (OSError, KafkaError) as exc:  # the worker too busy to answer in 5 s, say: a gap
                    missed.append(f"{(now - started) / 60:.1f} min: {exc!r}")
                    print(f"sample missed: {missed[-1]}", flush=True)
                    continue
                cpu = loops.cpu_seconds(worker)
                cpu_pct = round((cpu - cpu_before) / (now - wall_before) * 100, 1)
                cpu_before, wall_before = cpu, now
                samples.append(Sample(**{**asdict(sample), "worker_cpu_pct": cpu_pct}))
                print(
                    f"{sample.t_s / 60:5.1f} min: read {sample.events_read:,} lag {sample.lag_events:,} "
                    f"rss {sample.worker_rss_mb} MB cpu {cpu_pct}% stats {sample.stats_s}s cli {sample.cli_stats_s}s"
                    f" (cpu {sample.cli_stats_cpu_s}s)",
                    flush=True,
                )
            producer.join()
            timer.done.set()
            if producer.error is not None or producer.result is None:
                raise RuntimeError(f"the producer failed: {producer.error!r}")
            sent = producer.result.sent
            settled = stack.settle(events=sent, timeout_s=600 + sent / 1000)
            correct, check_text = exactness(stack, settled, sent)
            log = stack.workers[0].log
            noisy = [line for line in log.read_text(errors="replace").splitlines() if NOISY.search(line)]
    finally:
        kafka.down()
    result = {
        "rate": rate,
        "minutes": minutes,
        "produced": sent,
        "produced_events_per_s": round(producer.result.events_per_s, 1),
        "correct": correct,
        "check": check_text,
        "cli_stats_failures": timer.failures,
        "samples": len(samples),
        "samples_missed": missed,
        "worker_log_warning_or_error_lines": len(noisy),
        "worker_log_first_noisy": noisy[:5],
        **summary(samples, minutes),
        "workdir": str(workdir),
    }
    _write_csv(out / "soak.csv", samples)
    _plot(out / "soak.png", samples, f"soak: {rate:,.0f} events/s for {minutes:g} min, one worker")
    (out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1500.0, help="events/s [%(default)s]")
    parser.add_argument("--minutes", type=float, default=60.0, help="how long to produce [%(default)s]")
    parser.add_argument("--kafka-port", type=int, default=DEFAULT_KAFKA_PORT, help="broker port [%(default)s]")
    parser.add_argument("--out", type=Path, default=Path(".collectors/soak"), help="where to write [%(default)s]")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # stop the worker, destination and broker on the way out
    result = soak(rate=args.rate, minutes=args.minutes, kafka_port=args.kafka_port, out=args.out)
    print(json.dumps(result, indent=2), flush=True)
    return 0 if result["correct"] and not result["worker_log_warning_or_error_lines"] else 1


if __name__ == "__main__":
    sys.exit(main())
