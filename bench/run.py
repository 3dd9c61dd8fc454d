"""``make bench``: the worker against the performance issue's ceilings and targets, on one broker, in one run.

Starts its own Kafka broker (port 39392 by default, data in a temporary directory), fills a topic with N
generated prediction events, then measures in turn: raw (consume + decode), baseline A (consume, decode,
select, produce survivors), the real worker posting to the reference destination (pipeline), the same with
1,000 collectors over 100 models (scaling), the naive Faust agent (baseline B), two workers in one group,
the latency at half the pipeline's rate, the worker's memory with the destination down, and posting with
batches against one input per request. Checks each variant's output (``streams.core.simulate``, the workers'
ledgers, the destination's database). Prints a table, and as its last line one JSON object. Exit status 1
when a check fails (a missed target is reported, not an error).

    .venv/bin/python -m bench.run [--quick | --events N] [--only NAME[,NAME]] [--rate R] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

if not __package__:  # run as `python bench/run.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from bench import loops, rebalance, scenarios
from bench.scenarios import PARTITIONS, Bench, Outcome
from bench.workload import (
    SCALING_MODELS,
    Expectation,
    event_lines,
    event_pool,
    expect,
    queue_lines,
    write_collectors,
    write_sampler,
)
from streams.tools.localkafka.broker import DIST_ENV, LocalKafka, default_home
from streams.tools.localstack import free_port

DEFAULT_KAFKA_PORT = 39392
POSTING_RTT_S = 0.02  # the round trip of a hosted inputs API, for the second posting measurement
BALANCED = {"pipeline", "scaling"}  # run four times each, in the order ABBA BAAB (:func:`schedule`)
VARIANTS = (
    "raw",
    "baseline_a",
    "pipeline",
    "scaling",
    "naive",
    "workers",
    "latency",
    "memory",
    "posting",
    "rebalance",
)
ON_MAIN_TOPIC = frozenset({"raw", "baseline_a", "pipeline", "naive", "workers"})
FALLBACK_RATE = 2_000.0
POOL_EVENTS = 10_000
TARGETS: dict[str, tuple[str, float]] = {
    "pipeline_vs_baseline_a": (">=", 0.33),
    "pipeline_vs_naive": (">=", 3),
    "collectors_1000_vs_10": (">=", 0.9),
    "p99_latency_ms": ("<=", 500),
    "stalled_peak_rss_mb": ("<=", 300),
    "batching_vs_single": (">=", 20),
    "posting_mean_batch_size": (">=", 64),
    **rebalance.TARGETS,
}


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each measurement does."""

    events: int
    """Events in the main topic and in the scaling topic."""
    latency_s: float
    warmup_s: float
    rebalance_runs: int
    stall_s: float
    posting_events: int
    single_s: float
    single_inputs: int


FULL = Sizes(
    events=200_000,
    latency_s=12,
    warmup_s=2,
    rebalance_runs=3,
    stall_s=60,
    posting_events=100_000,
    single_s=30,
    single_inputs=20_000,
)
QUICK = Sizes(
    events=20_000,
    latency_s=6,
    warmup_s=2,
    rebalance_runs=1,
    stall_s=10,
    posting_events=5_000,
    single_s=10,
    single_inputs=1_000,
)
REBALANCE_RATE = 300.0  # events/s produced through the rebalance variant: steady work, far below the maximum


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _prepare(
    bench: Bench, name: str, config: Path, count: int, *, seed: int, models: int = 1, text_share: float = 0.2
) -> tuple[str, Expectation, float]:
    """Generate ``count`` events, compute what ``config``'s collectors must do with them, fill a topic; return
    the topic, the expectation and the seconds publishing took."""
    _say(f"{name}: generating {count:,} events (seed {seed}, {models} model(s)) and simulating them")
    lines, keys = event_lines(count, seed=seed, models=models, text_share=text_share)
    expected = expect(config, lines)
    topic = f"{bench.run_id}-{name}"
    started = time.monotonic()
    asyncio.run(loops.fill_topic(bench.bootstrap, topic, lines, keys, partitions=PARTITIONS))
    return topic, expected, time.monotonic() - started


@dataclass(slots=True)
class Run:
    """One bench run's variants, each a method named as in :data:`VARIANTS`, run in that order."""

    bench: Bench
    sizes: Sizes
    seed: int
    rate: float
    base_url: str
    config: Path
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    topic: str = ""
    expected: Expectation | None = None
    publish_s: float | None = None
    scaling_setup: tuple[Path, str, Expectation] | None = None  # collectors file, topic, expectation

    def prepare_main_topic(self) -> None:
        self.topic, self.expected, self.publish_s = _prepare(
            self.bench, "predictions", self.config, self.sizes.events, seed=self.seed
        )

    @property
    def common(self) -> dict[str, Any]:
        """What the variants on the main topic share."""
        return {"topic": self.topic, "config": self.config, "events": self.sizes.events, "expected": self.expected}

    def raw(self) -> Outcome:
        return scenarios.run_raw(self.bench, topic=self.topic, events=self.sizes.events)

    def baseline_a(self) -> Outcome:
        return scenarios.run_baseline_a(self.bench, **self.common)

    def pipeline(self, repeat: int = 1) -> Outcome:
        return scenarios.run_pipeline(self.bench, name=_nth("pipeline", repeat), **self.common)

    def naive(self) -> Outcome:
        return scenarios.run_naive(self.bench, **self.common)

    def workers(self) -> Outcome:
        return scenarios.run_pipeline(self.bench, name="workers", workers=2, **self.common)

    def scaling(self, repeat: int = 1) -> Outcome:
        if self.scaling_setup is None:
            many = write_collectors(
                self.bench.workdir / "collectors-1000.yaml", base_url=self.base_url, models=SCALING_MODELS
            )
            topic, expected, _ = _prepare(
                self.bench, "scaling", many, self.sizes.events, seed=self.seed, models=SCALING_MODELS
            )
            self.scaling_setup = (many, topic, expected)
        many, topic, expected = self.scaling_setup
        return scenarios.run_pipeline(
            self.bench,
            name=_nth("scaling", repeat),
            topic=topic,
            config=many,
            events=self.sizes.events,
            expected=expected,
        )

    @property
    def full_rate(self) -> float:
        """The pipeline's measured maximum, else ``--rate``."""
        pipeline = self.outcomes.get("pipeline")
        return pipeline.window.events_per_s if pipeline and pipeline.window else self.rate

    def latency(self) -> Outcome:
        pool = event_pool(POOL_EVENTS, seed=self.seed + 1)
        return scenarios.run_latency(
            self.bench,
            config=self.config,
            pool=pool,
            rate=self.full_rate / 2,
            seconds=self.sizes.latency_s,
            warmup_s=self.sizes.warmup_s,
        )

    def memory(self) -> Outcome:
        pool = event_pool(POOL_EVENTS, seed=self.seed + 1)
        return scenarios.run_memory(
            self.bench, config=self.config, pool=pool, rate=self.full_rate, seconds=self.sizes.stall_s
        )

    def posting(self) -> Outcome:
        sampler = write_sampler(self.bench.workdir / "collectors-sampler.yaml", base_url=self.base_url)
        count = self.sizes.posting_events
        _say(f"posting: generating {count:,} events (seed {self.seed + 2}) and selecting them into queue records")
        lines, _keys = event_lines(count, seed=self.seed + 2, text_share=0.0)
        expected = expect(sampler, lines)
        return scenarios.run_posting(
            self.bench,
            topic=f"{self.bench.run_id}-posting-predictions",  # left empty: the posting agent does the work
            queue=queue_lines(sampler, lines),
            config=sampler,
            expected=expected,
            single_s=self.sizes.single_s,
            single_inputs=self.sizes.single_inputs,
            rtt_s=POSTING_RTT_S,
        )

    def rebalance(self) -> Outcome:
        """:func:`bench.rebalance.run_rebalance` ``rebalance_runs`` times, each in its own group; the medians."""
        pool = event_pool(POOL_EVENTS, seed=self.seed + 3)
        runs: list[Outcome] = []
        for number in range(1, self.sizes.rebalance_runs + 1):
            _say(f"rebalance: run {number} of {self.sizes.rebalance_runs}")
            try:
                runs.append(
                    rebalance.run_rebalance(
                        self.bench, config=self.config, pool=pool, rate=REBALANCE_RATE, name=f"rebalance-{number}"
                    )
                )
            except Exception as exc:  # the other runs' figures still count
                traceback.print_exc()
                runs.append(Outcome(check=False, check_text=f"failed: {type(exc).__name__}: {exc}"[:500]))
        measured = [run.extra for run in runs if run.extra]
        return Outcome(
            check=all(run.check for run in runs),
            check_text="; ".join(run.check_text for run in runs),
            extra={"medians": rebalance.summary(measured) if measured else {}, "runs": measured},
        )


def _nth(name: str, repeat: int) -> str:
    """A run's name (its consumer group and queue topic): the variant's, numbered from its second run."""
    return name if repeat == 1 else f"{name}-{repeat}"


def schedule(only: set[str]) -> list[str]:
    """The chosen variants in :data:`VARIANTS` order; with both pipeline and scaling, those two run four times
    each, pipeline, scaling, scaling, pipeline, then scaling, pipeline, pipeline, scaling: whatever a variant
    gains or loses by running later or earlier counts the same on both sides of their ratio
    (docs/PERFORMANCE.md: with scaling run first the ratio came out higher), and four runs a side halve
    the spread of one pair (a variant's runs within one bench differed by up to 14%)."""
    order = [variant for variant in VARIANTS if variant in only]
    if only >= BALANCED:
        after = order.index("scaling") + 1
        order[after:after] = ["scaling", "pipeline", "scaling", "pipeline", "pipeline", "scaling"]
    return order


def measure(*, sizes: Sizes, seed: int, kafka_port: int, workdir: Path, only: set[str], rate: float) -> dict[str, Any]:
    """Run the chosen variants once, in :data:`VARIANTS` order; return the results as a JSON-ready mapping."""
    destination_port = free_port()
    base_url = f"http://127.0.0.1:{destination_port}"
    config = write_collectors(workdir / "collectors.yaml", base_url=base_url)
    dist = Path(os.environ.get(DIST_ENV) or default_home() / "dist")
    kafka = LocalKafka(port=kafka_port, home=workdir / "kafka", dist=dist)
    kafka.up()
    try:
        pid = kafka.status().pid
        assert pid is not None
        bench = Bench(
            kafka.bootstrap_servers, f"bench-{int(time.time())}", workdir, psutil.Process(pid), destination_port
        )
        run = Run(bench, sizes, seed, rate, base_url, config)
        if only & ON_MAIN_TOPIC:
            run.prepare_main_topic()
        runs: dict[str, int] = {}
        for variant in schedule(only):
            repeat = runs[variant] = runs.get(variant, 0) + 1
            _say(variant if repeat == 1 else f"{variant}, again")
            try:
                outcome = getattr(run, variant)(repeat) if repeat > 1 else getattr(run, variant)()
            except Exception as exc:  # one variant failing must not lose the others' figures
                traceback.print_exc()
                outcome = Outcome(check=False, check_text=f"failed: {type(exc).__name__}: {exc}"[:500])
            earlier = run.outcomes.get(variant)
            run.outcomes[variant] = outcome if earlier is None else scenarios.pooled(earlier, outcome)
    finally:
        kafka.down()
    return report(run.outcomes, sizes=sizes, expected=run.expected, publish_s=run.publish_s)


def _rate(outcomes: dict[str, Outcome], name: str) -> float | None:
    outcome = outcomes.get(name)
    return round(outcome.window.events_per_s, 1) if outcome and outcome.window else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _ratios_each(scaling: dict[str, Any], pipeline: dict[str, Any]) -> list[float | None]:
    """Each scaling run's rate over its pipeline twin's (the runs in :func:`schedule` order: the n-th of
    each), to show the spread the pooled ratio evens out."""
    pairs = zip(scaling.get("runs", []), pipeline.get("runs", []), strict=False)
    return [_ratio(many["events_per_s"], ten["events_per_s"]) for many, ten in pairs]


def _median(details: dict[str, Any], key: str) -> float | None:
    """The rebalance variant's median of ``key`` over its runs."""
    figure = details.get("rebalance", {}).get("medians", {}).get(key)
    return None if figure is None else float(figure["median"])


def _met(value: float | None, comparison: str, bound: float) -> bool | None:
    if value is None:
        return None
    return value >= bound if comparison == ">=" else value <= bound


def report(
    outcomes: dict[str, Outcome], *, sizes: Sizes, expected: Expectation | None, publish_s: float | None
) -> dict[str, Any]:
    """The results: rates and ratios, the issue's targets, CPU per event, checks, each variant's details."""
    rates = {name: _rate(outcomes, name) for name in ("raw", "baseline_a", "pipeline", "scaling", "naive", "workers")}
    details = {name: outcome.extra for name, outcome in outcomes.items() if outcome.extra}
    latency, memory, posting = (details.get(name, {}) for name in ("latency", "memory", "posting"))
    batched, single = posting.get("batched", {}), posting.get("single", {})
    result: dict[str, Any] = {
        "events": sizes.events,
        **{f"{name}_events_per_s": rate for name, rate in rates.items()},
        "pipeline_vs_raw": _ratio(rates["pipeline"], rates["raw"]),
        "pipeline_vs_baseline_a": _ratio(rates["pipeline"], rates["baseline_a"]),
        "pipeline_vs_naive": _ratio(rates["pipeline"], rates["naive"]),
        "collectors_1000_vs_10": _ratio(rates["scaling"], rates["pipeline"]),
        "collectors_1000_vs_10_each": _ratios_each(details.get("scaling", {}), details.get("pipeline", {})),
        "two_workers_vs_one": _ratio(rates["workers"], rates["pipeline"]),
        "p50_latency_ms": latency.get("p50_ms"),
        "p99_latency_ms": latency.get("p99_ms"),
        "stalled_peak_rss_mb": memory.get("peak_rss_mb"),
        "batching_vs_single": _ratio(batched.get("inputs_per_s"), single.get("inputs_per_s")),
        "batching_vs_single_rtt": _ratio(
            posting.get("batched_rtt", {}).get("inputs_per_s"), posting.get("single_rtt", {}).get("inputs_per_s")
        ),
        "posting_rtt_ms": posting.get("rtt_ms"),
        "batched_inputs_per_s": batched.get("inputs_per_s"),
        "single_inputs_per_s": single.get("inputs_per_s"),
        "posting_mean_batch_size": batched.get("mean_batch_size"),
        **{key: _median(details, key) for key in rebalance.TARGETS},
        "posting_cpu_us_per_input": {
            "batched": batched.get("cpu_us_per_input"),
            "single": single.get("cpu_us_per_input"),
        },
    }
    result["targets"] = {
        key: {"value": result[key], "target": f"{comparison} {bound:g}", "met": _met(result[key], comparison, bound)}
        for key, (comparison, bound) in TARGETS.items()
    }
    measured = [target["met"] for target in result["targets"].values() if target["met"] is not None]
    result |= {
        "targets_met": all(measured) if len(measured) == len(TARGETS) else None,
        "targets_met_count": f"{sum(measured)}/{len(measured)} measured",
        "cpu_us_per_event": {name: o.window.cpu_us() for name, o in outcomes.items() if o.window is not None},
        "simulate_events_per_s": round(sizes.events / expected.simulate_s, 1) if expected else None,
        "expected_queued": expected.queued if expected else None,
        "expected_posted": expected.posted if expected else None,
        "publish_s": None if publish_s is None else round(publish_s, 1),
        "checks": {name: o.check for name, o in outcomes.items()},
        "check_details": {name: o.check_text for name, o in outcomes.items()},
        "correct": all(o.check for o in outcomes.values()),
        "details": details,
        "machine": {
            "nproc": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return result


NAMES = {
    "raw": "raw",
    "baseline_a": "baseline A",
    "pipeline": "pipeline",
    "scaling": "1,000 coll.",
    "naive": "naive (B)",
    "workers": "2 workers",
}


def _own_cpu(cpu: dict[str, float | None]) -> float:
    """CPU µs/event of the process doing the work (the workers summed)."""
    own = [value or 0 for name, value in cpu.items() if name == "process" or name.startswith("worker")]
    return sum(own)


def _latency_line(d: dict[str, Any]) -> str:
    return (
        f"latency at {d['target_events_per_s']:,.0f} events/s (produced {d['produced_events_per_s']:,.0f}/s for "
        f"{d['seconds']}s, the first {d['warmup_s']}s left out): p50 {d['p50_ms']} ms, p90 {d['p90_ms']} ms, "
        f"p99 {d['p99_ms']} ms, max {d['max_ms']} ms over {d['inputs_measured']:,} inputs; mean batch "
        f"{d['mean_batch_size']}"
    )


def _memory_line(d: dict[str, Any]) -> str:
    return (
        f"destination down {d['stalled_s']}s at {d['produced_events_per_s']:,.0f} events/s: worker RSS "
        f"{d['rss_before_mb']} MB before, peak {d['peak_rss_mb']} MB ({d['rss_samples']} samples), "
        f"{d['rss_after_recovery_mb']} MB after; {d['read_while_down']:,} events read while down, settled "
        f"{d['recovery_s']}s after it came back"
    )


def _posting_line(d: dict[str, Any]) -> str:
    lines = []
    for label, where in (("", "loopback"), ("_rtt", f"{d['rtt_ms']} ms round trip")):
        batched, single = d[f"batched{label}"], d[f"single{label}"]
        lines.append(
            f"posting ({where}): batched {batched['inputs_per_s'] or 0:,.0f} inputs/s ({batched['inputs']:,} in "
            f"{batched['seconds']}s, mean batch {batched['mean_batch_size']}), one per request "
            f"{single['inputs_per_s'] or 0:,.0f} inputs/s ({single['inputs']:,} in {single['seconds']}s)"
        )
        lines.append(f"  CPU µs per input: batched {_cpu_text(batched)}; one per request {_cpu_text(single)}")
    return "\n".join(lines)


def _rebalance_line(d: dict[str, Any]) -> str:
    medians = d["medians"]
    figures = ", ".join(f"{key} {value['median']} {value['values']}" for key, value in medians.items())
    return f"rebalance ({len(d['runs'])} runs; median [each run]): {figures}"


def _cpu_text(run: dict[str, Any]) -> str:
    cpu = run.get("cpu_us_per_input") or {}
    return ", ".join(f"{name} {value}" for name, value in cpu.items()) or "not measured"


def table(result: dict[str, Any]) -> str:
    """The human-readable summary printed before the JSON line."""
    header = f"{'variant':<12} {'events/s':>10} {'vs A':>7} {'CPU µs/ev':>10} {'broker µs/ev':>13}  check"
    rows = [header] if any(result[f"{key}_events_per_s"] is not None for key in NAMES) else []
    for key, name in NAMES.items():
        rate = result[f"{key}_events_per_s"]
        if rate is None:
            continue
        cpu = result["cpu_us_per_event"][key]
        versus = f"{rate / result['baseline_a_events_per_s']:.3f}" if result["baseline_a_events_per_s"] else "-"
        rows.append(
            f"{name:<12} {rate:>10,.0f} {versus:>7} {_own_cpu(cpu):>10.1f} {cpu.get('broker') or 0:>13.1f}  "
            f"{'ok' if result['checks'][key] else 'FAILED'}: {result['check_details'][key]}"
        )
    details = result["details"]
    for key in ("pipeline", "scaling", "workers"):
        if key in details:
            d = details[key]
            read = (
                ""
                if d["first_to_last_event_read_s"] is None
                else f"all read after {d['first_to_last_event_read_s']}s, "
                f"longest posting pause {d['longest_posting_pause_s']}s, "
            )
            rows.append(
                f"{NAMES[key]}: {d['destination_requests']:,} requests, mean batch {d['mean_batch_size']}, "
                f"{d['duplicates_answered']:,} duplicates, {d['startup_to_first_event_s']}s healthz → first event, "
                f"{read}settled after {d['first_event_to_settled_s']}s, {d['worker_log_error_lines']} error lines "
                "in the worker log(s)"
            )
            rows.extend(f"  {line}" for line in d["worker_log_first_errors"])
            if "runs" in d:  # run four times (:func:`schedule`); the figures above are the first run's
                rows.append(
                    "  each run: "
                    + "; ".join(
                        f"{r['events_per_s'] or 0:,.0f} events/s, settled after {r['first_event_to_settled_s']}s"
                        for r in d["runs"]
                    )
                )
    for key, describe in (("latency", _latency_line), ("memory", _memory_line), ("posting", _posting_line)):
        if key in details:
            verdict = "ok" if result["checks"][key] else "FAILED"
            rows.append(f"{describe(details[key])} [{verdict}: {result['check_details'][key]}]")
    if "rebalance" in details:
        rows.append(_rebalance_line(details["rebalance"]))
    for key, text in result["check_details"].items():
        if text.startswith("failed: "):
            rows.append(f"{key} FAILED: {text}")
    if result["simulate_events_per_s"]:
        rows.append(
            f"offline (simulate: decode, validate, select): {result['simulate_events_per_s']:,.0f} events/s; "
            f"expected {result['expected_queued']:,} queued, {result['expected_posted']:,} posted"
        )
    rows.append(f"\n{'target':<24} {'value':>10} {'goal':>10}  met")
    for key, target in result["targets"].items():
        value = "-" if target["value"] is None else f"{target['value']:,}"
        met = {True: "yes", False: "NO", None: "not measured"}[target["met"]]
        rows.append(f"{key:<24} {value:>10} {target['target']:>10}  {met}")
    return "\n".join(rows)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _variants(text: str) -> set[str]:
    chosen = {name.strip() for name in text.split(",") if name.strip()}
    unknown = chosen - set(VARIANTS)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown {sorted(unknown)}; choose among {', '.join(VARIANTS)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=FULL.events, help="events in the topic [%(default)s]")
    parser.add_argument("--quick", action="store_true", help=f"smoke check: {QUICK}")
    parser.add_argument("--only", type=_variants, default=set(VARIANTS), help=f"among {', '.join(VARIANTS)}")
    parser.add_argument(
        "--rate",
        type=float,
        default=FALLBACK_RATE,
        help="the pipeline's maximum, events/s, for latency (half) and memory (all) when the pipeline is not "
        "measured in this run [%(default)s]",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated events [%(default)s]")
    parser.add_argument("--kafka-port", type=int, default=DEFAULT_KAFKA_PORT, help="broker port [%(default)s]")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, broker data)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else replace(FULL, events=args.events)
    workdir = Path(tempfile.mkdtemp(prefix="collectors-bench-"))
    signal.signal(signal.SIGTERM, _terminate)
    result: dict[str, Any] | None = None
    try:
        result = measure(
            sizes=sizes, seed=args.seed, kafka_port=args.kafka_port, workdir=workdir, only=args.only, rate=args.rate
        )
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
