"""``collectors demo``: the whole path on real parts, started and stopped by one command.

Local Kafka (KRaft), the reference destination on SQLite, one worker running the shipped collectors (or
those of a file), the shipped sample predictions (images inline: nothing is fetched beyond loopback), and
predictions made through the tap in front of the reference model; prints each collector's funnel and,
last, how many inputs the destination holds.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import click

from streams.core.config import read_document
from streams.services.destination.backends import open_store
from streams.tools.demo_tap import predict_through_tap
from streams.tools.display import funnel_table
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import Service, start_destination, start_worker, wait_settled

SAMPLES = resources.files("streams.tools.samples")
DESTINATION_URL_ENV = "COLLECTORS_DESTINATION_URL"
"""The collectors files the project ships post to ``${COLLECTORS_DESTINATION_URL:-http://127.0.0.1:8080}``."""
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


def _apps_and_keys(config: Path) -> tuple[dict[str, str], dict[tuple[str, str], list[str]]]:
    """For a collectors file: the key variables to set (a fresh key each), and by app the clear keys to
    create there (one per variable, or the file's own ``key``)."""
    document = read_document(config, {**os.environ, DESTINATION_URL_ENV: "http://127.0.0.1:1"})
    variables: dict[str, str] = {}
    apps: dict[tuple[str, str], list[str]] = {}
    for collector in document.collectors:
        destination = collector.destination
        target = (destination.user_id, destination.app_id)
        if destination.key_env is not None:
            clear = variables.setdefault(destination.key_env, f"demo-{secrets.token_hex(12)}")
        else:
            assert destination.key is not None
            clear = destination.key.get_secret_value()
        apps.setdefault(target, [])
        if clear not in apps[target]:
            apps[target].append(clear)
    return variables, apps


def run_demo(
    *, kafka_port: int, workdir: Path, config: Path | None = None, echo: Callable[[str], None] = click.echo
) -> int:
    """Run the demo over the collectors of ``config`` (default: the shipped ones); return how many inputs
    the destination holds at the end."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    run = f"demo-{int(time.time())}"
    config = config or Path(str(SAMPLES.joinpath("collectors.yaml")))
    variables, keys = _apps_and_keys(config)
    caller_key = f"demo-{CALLER}-{secrets.token_hex(12)}"
    db = workdir / "destination.db"
    with open_store(db) as store:
        for (user_id, app_id), clear_keys in keys.items():
            for clear in clear_keys:
                store.bootstrap(user_id, app_id, clear, ["PostInputs"])
        store.bootstrap(CALLER, "apps", caller_key, ["PostInputs"])
    lines = [line for line in SAMPLES.joinpath("predictions.jsonl").read_bytes().splitlines() if line.strip()]
    services: list[Service] = []
    with _kafka(kafka_port) as broker:
        try:
            _step(f"starting the reference destination (SQLite at {db})")
            destination = start_destination(db, log=workdir / "destination.log")
            services.append(destination)
            _step(f"starting a worker with the collectors of {config}")
            env = variables | {DESTINATION_URL_ENV: destination.url}
            env |= {"COLLECTORS_PREDICTIONS_TOPIC": f"{run}-predictions", "COLLECTORS_QUEUE_TOPIC": f"{run}-queue"}
            env["COLLECTORS_DEAD_LETTER_TOPIC"] = f"{run}-dead-letters"
            env["COLLECTORS_CONTROL_TOPIC"] = f"{run}-control"
            env["COLLECTORS_ALLOWED_DESTINATIONS"] = destination.url
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
        posted = sum(store.count_inputs(user_id, app_id) for user_id, app_id in sorted(keys))
    echo(f"{posted} inputs posted to the destination")
    return posted


def _publish(lines: list[bytes], bootstrap: str, topic: str) -> None:
    import asyncio

    from streams.kafka.producing import publish_lines
    from streams.tools.progress import progress

    with progress(len(lines), f"publishing to {topic}") as advance:
        asyncio.run(publish_lines(lines, bootstrap=bootstrap, topic=topic, progress=advance))
