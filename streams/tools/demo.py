"""``collectors demo``: the whole path on real parts, started and stopped by one command.

Local Kafka (KRaft), the reference destination on SQLite, one worker, the bundled sample predictions, and
predictions made through the tap in front of the reference model; prints each collector's funnel and, last,
how many inputs the destination holds.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import click
import yaml

from streams.services.destination.backends import open_store
from streams.tools.demo_tap import predict_through_tap
from streams.tools.display import funnel_table
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import Service, start_destination, start_worker, wait_settled

SAMPLES = resources.files("streams.tools.samples")
DEMO_USER = "demo"
KEY_ENVS = {"training": "COLLECTORS_DEMO_KEY", "reviews": "COLLECTORS_DEMO_REVIEWS_KEY"}
CALLER = "bob"  # calls the reference model through the tap (his key is the destination's: MyScopes names him)
TAPPED_PICTURES = 24


def _step(message: str) -> None:
    click.secho(f"==> {message}", fg="cyan", err=True)


@contextlib.contextmanager
def _kafka(port: int) -> Iterator[LocalKafka]:
    broker = LocalKafka(port=port)
    already = broker.status().running
    if already:
        _step(f"using the Kafka broker already running at {broker.bootstrap_servers}")
    else:
        _step(f"starting Kafka (KRaft, single node) at {broker.bootstrap_servers}")
    broker.up()
    try:
        yield broker
    finally:
        if not already:
            _step("stopping Kafka")
            broker.down()


def _configure(workdir: Path, base_url: str) -> Path:
    document: dict[str, Any] = yaml.safe_load(SAMPLES.joinpath("collectors.yaml").read_text(encoding="utf-8"))
    for collector in document["collectors"]:
        collector["destination"]["base_url"] = base_url
    path = workdir / "collectors.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def run_demo(*, kafka_port: int, workdir: Path, echo: Callable[[str], None] = click.echo) -> int:
    """Run the demo; return how many inputs the destination holds at the end."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    run = f"demo-{int(time.time())}"
    keys = {app: f"demo-{app}-{secrets.token_hex(12)}" for app in KEY_ENVS}
    caller_key = f"demo-{CALLER}-{secrets.token_hex(12)}"
    db = workdir / "destination.db"
    with open_store(db) as store:
        for app, key in keys.items():
            store.bootstrap(DEMO_USER, app, key, ["PostInputs"])
        store.bootstrap(CALLER, "apps", caller_key, ["PostInputs"])
    lines = [line for line in SAMPLES.joinpath("predictions.jsonl").read_bytes().splitlines() if line.strip()]
    services: list[Service] = []
    with _kafka(kafka_port) as broker:
        try:
            _step(f"starting the reference destination (SQLite at {db})")
            destination = start_destination(db, log=workdir / "destination.log")
            services.append(destination)
            config = _configure(workdir, destination.url)
            _step(f"starting a worker with the collectors of {config}")
            env = {KEY_ENVS[app]: key for app, key in keys.items()}
            env |= {"COLLECTORS_PREDICTIONS_TOPIC": f"{run}-predictions", "COLLECTORS_QUEUE_TOPIC": f"{run}-queue"}
            env["COLLECTORS_DEAD_LETTER_TOPIC"] = f"{run}-dead-letters"
            env["COLLECTORS_CONTROL_TOPIC"] = f"{run}-control"
            worker = start_worker(
                config, broker=f"kafka://{broker.bootstrap_servers}", app_id=run, data_dir=workdir / "worker", env=env
            )
            services.append(worker)
            _step(f"publishing {len(lines)} sample predictions to {run}-predictions")
            _publish(lines, broker.bootstrap_servers, f"{run}-predictions")
            _step(f"starting the reference model and a tap in front of it; {CALLER} calls the model through the tap")
            tapped = predict_through_tap(
                workdir=workdir,
                bootstrap=broker.bootstrap_servers,
                topic=f"{run}-predictions",
                auth_url=destination.url,
                key=caller_key,
                pictures=TAPPED_PICTURES,
            )
            _step(f"the tap published {tapped} prediction events; waiting for the worker to select and post them")
            stats = wait_settled([worker], events=len(lines) + tapped, timeout_s=180)
        finally:
            for service in reversed(services):
                service.stop()
    echo("")
    echo(funnel_table(stats["collectors"]))
    events = stats["events"]
    echo(
        f"\nevents: {events.get('events', 0)} read, {events.get('dead_lettered', 0)} malformed "
        f"(sent to {run}-dead-letters with the reason), {events.get('unmatched', 0)} of no collector's model"
    )
    with open_store(db) as store:
        posted = sum(store.count_inputs(DEMO_USER, app) for app in keys)
    echo(f"{posted} inputs posted to the destination")
    return posted


def _publish(lines: list[bytes], bootstrap: str, topic: str) -> None:
    import asyncio

    from streams.kafka.producing import publish_lines

    asyncio.run(publish_lines(lines, bootstrap=bootstrap, topic=topic, progress=True))
