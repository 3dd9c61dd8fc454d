"""``make bench``, model nodes: the posting path with one ``model`` node against the reference model.

Starts its own Kafka broker (port 39396 by default). N text events are selected offline with the worker's own
code for one collector keeping all of them; the queue records fill each run's queue topic before its worker
starts (the posting agent alone, as ``bench.run``'s posting variant). Runs, each with a fresh destination and
worker: ``plain`` (no post-queue step), ``node`` (a Clarifai PostModelOutputs node on the reference model over
REST, model latency 0), ``node_20ms`` (the model answering each call 20 ms late), then memory: the plain
collector with the destination down, and the node collector with the model stalled (its process stopped:
calls time out and are retried), each for ``--stall-s`` from a full queue, sampling the worker's RSS; then
the destination or model comes back and every input must be stored exactly once. Rates are inputs stored
per second from the destination's stored times. Prints a table and, as its last line, one JSON object.

    .venv/bin/python -m bench.models [--quick] [--events N] [--stall-s S]
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if not __package__:  # run as `python bench/models.py`: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import psutil
import yaml

from bench import loops
from bench.scenarios import PARTITIONS, _delivery_rate, _rss_mb
from bench.stack import Stack, running, stored_inputs
from bench.workload import DESTINATION_APP, DESTINATION_USER, KEY_ENV, queue_lines
from streams.tools.localkafka.broker import DIST_ENV, LocalKafka, default_home
from streams.tools.localstack import Service, free_port, start_command

DEFAULT_KAFKA_PORT = 39396
SOURCE = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "sentiment-analysis"}
VOCABULARY = "good great bad dog cat pizza coffee train bus tree sea sky late loved hated food friend the a and"
WORDS = VOCABULARY.split()
TARGET_NODE_20MS_PER_S = 1000.0
TARGET_NODE_VS_PLAIN = 0.8
TARGET_STALL_EXTRA_MB = 50.0


def _say(message: str) -> None:
    print(f"[bench.models] {message}", file=sys.stderr, flush=True)


def events(count: int) -> list[bytes]:
    """Text events, each a different short review."""
    lines = []
    for n in range(count):
        text = " ".join(WORDS[(n * k + k * k) % len(WORDS)] for k in range(1, 9)) + f" #{n}"
        lines.append(
            orjson.dumps(
                {
                    "id": f"m-{n:08d}",
                    "created_at": "2026-12-07T10:00:00Z",
                    "output": {
                        "model": {"id": SOURCE["model_id"], "user_id": "clarifai", "app_id": "main"},
                        "input": {"id": f"in-{n}", "data": {"text": {"raw": text}}},
                        "data": {"concepts": [{"id": "positive", "name": "positive", "value": 0.7}]},
                    },
                }
            )
        )
    return lines


def write_config(path: Path, *, model_url: str | None) -> Path:
    """One collector keeping every event; with ``model_url``, a post-queue workflow of one model node."""
    collector: dict[str, Any] = {
        "id": "all",
        "source": SOURCE,
        "destination": {
            "base_url": "http://127.0.0.1:1",
            "user_id": DESTINATION_USER,
            "app_id": DESTINATION_APP,
            "key_env": KEY_ENV,
        },
        "pre_queue_random_sample": 1.0,
    }
    document: dict[str, Any] = {"collectors": [collector], "workflows": []}
    if model_url is not None:
        collector["post_queue_workflow_id"] = "second-model"
        node = {
            "operator": "model",
            "protocol": "clarifai",
            "url": model_url,
            "model_id": "reference",
            "key": "bench-model-key",
        }
        document["workflows"] = [{"id": "second-model", "nodes": [node]}]
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@contextmanager
def model_service(workdir: Path, name: str, latency_ms: float) -> Iterator[Service]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["model", "serve", "--port", str(port), "--latency-ms", str(latency_ms)]
    service = start_command(args, url=url, health_path="/healthz", log=workdir / f"model-{name}.log")
    try:
        yield service
    finally:
        service.process.send_signal(signal.SIGCONT)
        service.stop()


class Runs:
    """The broker, the queue records, and one stack per run."""

    def __init__(self, kafka: LocalKafka, workdir: Path, count: int) -> None:
        self.kafka = kafka
        self.workdir = workdir
        self.lines = events(count)
        self.destination_port = free_port()

    def _queue(self, config: Path) -> tuple[list[bytes], list[bytes]]:
        # The queue records do not depend on the destination's URL: select with the config as given.
        return queue_lines(config, self.lines)

    @contextmanager
    def stack(self, name: str, config: Path, **options: Any) -> Iterator[Stack]:
        values, keys = self._queue(config)
        asyncio.run(
            loops.fill_topic(self.kafka.bootstrap_servers, f"{name}-queue", values, keys, partitions=PARTITIONS)
        )
        with running(
            bootstrap=self.kafka.bootstrap_servers,
            topic=f"{name}-predictions",
            name=name,
            config=self._pointed(config),
            workdir=self.workdir,
            destination_port=self.destination_port,
            **options,
        ) as stack:
            yield stack

    def _pointed(self, config: Path) -> Path:
        """The config with the destination's URL (its port is fixed for the whole bench)."""
        document = yaml.safe_load(config.read_text(encoding="utf-8"))
        document["collectors"][0]["destination"]["base_url"] = f"http://127.0.0.1:{self.destination_port}"
        pointed = config.with_name(config.stem + "-pointed.yaml")
        pointed.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return pointed

    def throughput(self, name: str, config: Path, model: Service | None = None) -> dict[str, Any]:
        count = len(self.lines)
        with self.stack(name, config) as stack:
            processes = stack.processes()
            if model is not None:
                processes["model"] = psutil.Process(model.process.pid)
            before = {label: loops.cpu_seconds(process) for label, process in processes.items()}
            stack.wait_stored(at_least=count, timeout_s=600)
            cpu_us = {
                label: round((loops.cpu_seconds(process) - before[label]) / count * 1e6, 1)
                for label, process in processes.items()
            }
            stored = stored_inputs(stack.db)
            stats = stack.workers[0]
            models = json.loads(_get(f"{stats.url}/collectors/stats/?funnels=false")).get("models", {})
        inputs, seconds = _delivery_rate(stack.db, until_inputs=count, max_s=float("inf"))
        rate = round(inputs / seconds, 1) if seconds > 0 else None
        _say(f"{name}: {rate} inputs/s ({stored} stored; model calls {models.get('calls')}; CPU us/input {cpu_us})")
        return {
            "inputs_per_s": rate,
            "stored": stored,
            "exactly_all": stored == count,
            "model": models,
            "cpu_us_per_input": cpu_us,
        }

    def stalled(self, name: str, config: Path, stall_s: float, model: Service | None) -> dict[str, Any]:
        """Peak RSS of the worker with the destination down (``model`` None) or the model stopped."""
        count = len(self.lines)
        with self.stack(name, config, faults=model is None) as stack:
            worker = psutil.Process(stack.workers[0].process.pid)
            if model is None:
                stack.set_faults(down=True)
            else:
                os.kill(model.process.pid, signal.SIGSTOP)
            at_start = _rss_mb(worker)
            samples = []
            until = time.monotonic() + stall_s
            while time.monotonic() < until:
                samples.append(_rss_mb(worker))
                time.sleep(0.2)
            stored_while = stored_inputs(stack.db)
            if model is None:
                stack.set_faults(down=False)
            else:
                os.kill(model.process.pid, signal.SIGCONT)
            stack.wait_stored(at_least=count, timeout_s=600)
            stored = stored_inputs(stack.db)
        peak = round(max(samples), 1)
        _say(f"{name}: peak RSS {peak} MB while stalled {stall_s:.0f}s; then {stored} stored")
        return {
            "rss_at_stall_mb": round(at_start, 1),
            "peak_rss_mb": peak,
            "stored_while_stalled": stored_while,
            "stored": stored,
            "exactly_all": stored == count,
        }


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def run(*, count: int, stall_s: float, kafka_port: int, workdir: Path) -> dict[str, Any]:
    dist = Path(os.environ.get(DIST_ENV) or default_home() / "dist")
    kafka = LocalKafka(port=kafka_port, home=workdir / "kafka", dist=dist)
    kafka.up()
    try:
        runs = Runs(kafka, workdir, count)
        plain = write_config(workdir / "plain.yaml", model_url=None)
        result: dict[str, Any] = {"bench": "models", "events": count}
        result["plain"] = runs.throughput("plain", plain)
        with model_service(workdir, "node", 0.0) as model:
            result["node"] = runs.throughput("node", write_config(workdir / "node.yaml", model_url=model.url), model)
        with model_service(workdir, "node-20ms", 20.0) as model:
            node_20ms = write_config(workdir / "node-20ms.yaml", model_url=model.url)
            result["node_20ms"] = runs.throughput("node-20ms", node_20ms, model)
        result["stalled_destination"] = runs.stalled("stalled-destination", plain, stall_s, None)
        with model_service(workdir, "stalled", 0.0) as model:
            stalled = write_config(workdir / "stalled.yaml", model_url=model.url)
            result["stalled_model"] = runs.stalled("stalled-model", stalled, stall_s, model)
    finally:
        kafka.down()
    plain_rate = result["plain"]["inputs_per_s"] or 0.0
    node_rate = result["node"]["inputs_per_s"] or 0.0
    result["node_vs_plain"] = round(node_rate / plain_rate, 3) if plain_rate else None
    result["node_20ms_inputs_per_s"] = result["node_20ms"]["inputs_per_s"]
    extra = result["stalled_model"]["peak_rss_mb"] - result["stalled_destination"]["peak_rss_mb"]
    result["stalled_model_extra_mb"] = round(extra, 1)
    result["targets"] = {
        "node_20ms_inputs_per_s >= 1000": (result["node_20ms_inputs_per_s"] or 0) >= TARGET_NODE_20MS_PER_S,
        "node_vs_plain >= 0.8": (result["node_vs_plain"] or 0) >= TARGET_NODE_VS_PLAIN,
        "stalled_model_extra_mb <= 50": extra <= TARGET_STALL_EXTRA_MB,
    }
    runs_checked = [result[k] for k in ("plain", "node", "node_20ms", "stalled_destination", "stalled_model")]
    result["correct"] = all(r["exactly_all"] for r in runs_checked) and all(
        r["stored_while_stalled"] == 0 for r in (result["stalled_destination"], result["stalled_model"])
    )
    result["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end "
        "(shared with other work while measured)"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30_000, help="text events in each run [%(default)s]")
    parser.add_argument("--stall-s", type=float, default=30.0, help="seconds stalled [%(default)s]")
    parser.add_argument("--quick", action="store_true", help="smoke check: 3,000 events, 5 s stalled")
    parser.add_argument("--kafka-port", type=int, default=DEFAULT_KAFKA_PORT, help="broker port [%(default)s]")
    args = parser.parse_args(argv)
    count, stall_s = (3_000, 5.0) if args.quick else (args.events, args.stall_s)
    workdir = Path(tempfile.mkdtemp(prefix="collectors-bench-models-"))
    try:
        result = run(count=count, stall_s=stall_s, kafka_port=args.kafka_port, workdir=workdir)
    except BaseException:
        _say(f"failed; logs kept in {workdir}")
        raise
    for name in ("plain", "node", "node_20ms"):
        print(f"{name:22}{result[name]['inputs_per_s']!s:>12} inputs/s")
    for name in ("stalled_destination", "stalled_model"):
        print(f"{name:22}{result[name]['peak_rss_mb']!s:>12} MB peak RSS")
    for target, met in result["targets"].items():
        print(f"{target}: {'met' if met else 'MISSED'}")
    print(f"every input stored exactly once: {'yes' if result['correct'] else 'NO'}; {result['machine']}")
    print(json.dumps(result))
    if result["correct"]:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if result["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
