"""``make bench``, the tap: the latency the tap adds to a PostModelOutputs call, over calling the model directly.

Starts its own Kafka broker (port 39394 by default), the reference destination (MyScopes for the tap's caller
lookups), the reference model and the tap, each a process of its own on loopback. Sends PostModelOutputs
calls (one short text each: the model's own work stays small) at a fixed rate, open loop (a call's latency
counts from when it was due, so a backlog shows), alternately straight to the model and through the tap, in
blocks ordered ABBA BAAB so drift on the shared machine falls on both alike. Reports p50, p99 and max of
each, the tap's added latency (the differences), the tap's CPU per call, and checks that every call through
the tap became one event on the topic. Prints a table and, as its last line, one JSON object. Exit status 1
when a check fails (a missed target is reported, not an error).

    .venv/bin/python -m bench.tap [--quick] [--rate R] [--block-s S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as `python bench/tap.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import orjson
import psutil
import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.producing import ensure_topic
from streams.services.destination.store import Store
from streams.tools.localkafka.broker import DIST_ENV, LocalKafka, default_home
from streams.tools.localstack import Service, get_json, start_destination, start_model, start_tap

DEFAULT_KAFKA_PORT = 39394
TOPIC = "bench-tap-predictions"
PARTITIONS = 4
KEY = "bench-tap-key-0000000000000000"
TARGET_ADDED_P99_MS = 5.0
REVIEW = "Great pizza and friendly people, but the coffee was bad. Would the dog be welcome next time?"
ORDER = ("direct", "tap", "tap", "direct", "tap", "direct", "direct", "tap")  # ABBA BAAB


def _say(message: str) -> None:
    print(f"[bench.tap] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def _block(session: aiohttp.ClientSession, url: str, body: bytes, *, rate: float, seconds: float) -> list[float]:
    """Send calls at ``rate`` per second for ``seconds``, open loop; their latencies in ms (failed calls raise)."""
    count = int(rate * seconds)
    latencies: list[float] = []
    failures: list[str] = []

    async def one(due: float) -> None:
        async with session.post(url, data=body) as response:
            await response.read()
            if response.status != 200:
                failures.append(f"HTTP {response.status}")
        latencies.append((time.perf_counter() - due) * 1000.0)

    start = time.perf_counter() + 0.05
    tasks = []
    for number in range(count):
        due = start + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    if failures:
        raise RuntimeError(f"{len(failures)} calls failed, first: {failures[0]}")
    return latencies


async def _topic_end(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def _measure(model_url: str, tap: Service, *, rate: float, block_s: float, warmup_s: float) -> dict[str, Any]:
    body = orjson.dumps({"inputs": [{"id": "review-1", "data": {"text": {"raw": REVIEW}}}]})
    path = "/v2/users/clarifai/apps/main/models/general/versions/v1/outputs"
    urls = {"direct": model_url + path, "tap": tap.url + path}
    connector = aiohttp.TCPConnector(limit=200)
    headers = {"Authorization": f"Key {KEY}", "Content-Type": "application/json"}
    tap_process = psutil.Process(tap.process.pid)
    latencies: dict[str, list[float]] = {"direct": [], "tap": []}
    tap_cpu_s = 0.0
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        for name, url in urls.items():
            _say(f"warming up {name} ({warmup_s:.0f} s)")
            await _block(session, url, body, rate=rate, seconds=warmup_s)
        for number, name in enumerate(ORDER, start=1):
            _say(f"block {number}/{len(ORDER)}: {name}, {rate:.0f} calls/s for {block_s:.0f} s")
            before = sum(tap_process.cpu_times()[:2])
            latencies[name] += await _block(session, urls[name], body, rate=rate, seconds=block_s)
            if name == "tap":
                tap_cpu_s += sum(tap_process.cpu_times()[:2]) - before
    calls_through_tap = int(rate * warmup_s) + len(latencies["tap"])
    return {"latencies": latencies, "tap_cpu_s": tap_cpu_s, "calls_through_tap": calls_through_tap}


async def _published(tap: Service, bootstrap: str, expected: int) -> tuple[dict[str, Any], int]:
    """The tap's counters and the topic's record count, once the tap published what it queued (or 30 s passed)."""
    deadline = time.monotonic() + 30
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stats = get_json(f"{tap.url}/_tap/stats")
        if stats["publisher"]["published"] + stats["publisher"]["dropped"] >= expected:
            break
        await asyncio.sleep(0.5)
    return stats, await _topic_end(bootstrap, TOPIC)


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.50), 3),
        "p99_ms": round(percentile(values, 0.99), 3),
        "max_ms": round(max(values), 3),
        "calls": len(values),
    }


def run(*, rate: float, block_s: float, warmup_s: float, kafka_port: int, workdir: Path) -> dict[str, Any]:
    """Start everything, measure, stop everything; the results as a JSON-ready mapping."""
    dist = Path(os.environ.get(DIST_ENV) or default_home() / "dist")
    kafka = LocalKafka(port=kafka_port, home=workdir / "kafka", dist=dist)
    kafka.up()
    services: list[Service] = []
    try:
        asyncio.run(ensure_topic(kafka.bootstrap_servers, TOPIC, PARTITIONS))
        db = workdir / "destination.db"
        with Store(db) as store:
            store.bootstrap("bench", "models", KEY, ["PostInputs"])
        destination = start_destination(db, log=workdir / "destination.log")
        services.append(destination)
        model = start_model(log=workdir / "model.log")
        services.append(model)
        tap = start_tap(
            model.url, broker=kafka.bootstrap_servers, topic=TOPIC, auth_url=destination.url, log=workdir / "tap.log"
        )
        services.append(tap)
        measured = uvloop.run(_measure(model.url, tap, rate=rate, block_s=block_s, warmup_s=warmup_s))
        stats, on_topic = asyncio.run(_published(tap, kafka.bootstrap_servers, measured["calls_through_tap"]))
    finally:
        for service in services:
            service.stop()
        kafka.down()
    direct, tapped = (_summary(measured["latencies"][name]) for name in ("direct", "tap"))
    added_p99 = round(tapped["p99_ms"] - direct["p99_ms"], 3)
    expected = measured["calls_through_tap"]
    correct = (
        stats["publisher"]["published"] == expected and on_topic == expected and stats["publisher"]["dropped"] == 0
    )
    return {
        "bench": "tap",
        "rate_per_s": rate,
        "direct": direct,
        "tap": tapped,
        "added_p50_ms": round(tapped["p50_ms"] - direct["p50_ms"], 3),
        "added_p99_ms": added_p99,
        "target_added_p99_ms": TARGET_ADDED_P99_MS,
        "target_met": added_p99 <= TARGET_ADDED_P99_MS,
        "tap_cpu_us_per_call": round(measured["tap_cpu_s"] / max(1, tapped["calls"]) * 1e6, 1),
        "calls_through_tap": expected,
        "events_published": stats["publisher"]["published"],
        "events_on_topic": on_topic,
        "events_dropped": stats["publisher"]["dropped"],
        "correct": correct,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other work while measured",
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"tap at {result['rate_per_s']:.0f} calls/s ({result['machine']})",
        f"{'':10}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'calls':>9}",
    ]
    for name in ("direct", "tap"):
        row = result[name]
        lines.append(f"{name:10}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['max_ms']:>10.2f}{row['calls']:>9}")
    met = "met" if result["target_met"] else "MISSED"
    lines.append(
        f"added: p50 {result['added_p50_ms']:.2f} ms, p99 {result['added_p99_ms']:.2f} ms "
        f"(target p99 <= {result['target_added_p99_ms']:.0f} ms: {met}); "
        f"tap CPU {result['tap_cpu_us_per_call']:.0f} us/call"
    )
    lines.append(
        f"events: {result['calls_through_tap']} calls through the tap, {result['events_published']} published, "
        f"{result['events_on_topic']} on the topic, {result['events_dropped']} dropped: "
        + ("correct" if result["correct"] else "WRONG")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.tap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="calls per second [%(default)s]")
    parser.add_argument("--block-s", type=float, default=10.0, help="seconds per block (8 blocks) [%(default)s]")
    parser.add_argument("--quick", action="store_true", help="smoke check: 2 s blocks")
    parser.add_argument("--kafka-port", type=int, default=DEFAULT_KAFKA_PORT, help="broker port [%(default)s]")
    args = parser.parse_args(argv)
    block_s = 2.0 if args.quick else args.block_s
    workdir = Path(tempfile.mkdtemp(prefix="collectors-bench-tap-"))
    result: dict[str, Any] | None = None
    try:
        result = run(
            rate=args.rate, block_s=block_s, warmup_s=min(3.0, block_s), kafka_port=args.kafka_port, workdir=workdir
        )
    finally:
        if result is None or not result["correct"]:
            _say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(result))
    print(json.dumps(result), flush=True)
    return 0 if result["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
