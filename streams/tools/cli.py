"""The ``collectors`` command."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from streams.core.config import ConfigError
from streams.core.workflows import WorkflowError
from streams.tools.exits import EXIT_UNREACHABLE, EXIT_USAGE


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Collectors: turn live prediction traffic on Kafka into training data."""


def _fail(message: str, code: int = 1) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


@main.command()
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), help="Collectors file.")
@click.option("--broker", help="Kafka bootstrap, kafka://host:port [env COLLECTORS_BROKER].")
@click.option("--web-port", type=int, help="Port of the worker's web server [env COLLECTORS_WEB_PORT].")
@click.option("--app-id", help="Consumer group shared by all workers [env COLLECTORS_APP_ID].")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Worker state directory.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Log level.")
@click.option("--control-topic", help="Compacted topic of managed collectors [env COLLECTORS_CONTROL_TOPIC].")
@click.option("--log-format", type=click.Choice(["text", "json"]), help="json: a JSON object a line.")
@click.option(
    "--worker-id",
    help="Stable name of this worker, unique in the group: a restart with it costs no rebalance (static "
    "membership; default: the host name in a container) [env COLLECTORS_WORKER_ID].",
)
def worker(**options: Any) -> None:
    """Run a Faust worker: select from the predictions topic, post to destinations.

    Start more workers with the same --app-id to spread the topic's partitions over them.
    """
    from pydantic import ValidationError

    from streams.core.config import load_index
    from streams.core.logformat import LogFormat
    from streams.worker.app import create_app
    from streams.worker.faust_tuning import Worker
    from streams.worker.settings import WorkerSettings
    from streams.worker.topics import TopicLayoutError, prepare_topics

    overrides = {k: v for k, v in options.items() if v is not None}
    try:
        settings = WorkerSettings(**overrides)
    except ValidationError as exc:
        _fail(f"invalid worker settings: {exc}", EXIT_USAGE)
    try:
        partitions = asyncio.run(prepare_topics(settings))
    except ConnectionError as exc:
        _fail(f"{exc}. Is Kafka running? Start it with `collectors kafka up`.", EXIT_UNREACHABLE)
    except TopicLayoutError as exc:
        _fail(str(exc), EXIT_USAGE)
    settings = settings.model_copy(update={"partitions": partitions})
    static = []
    if settings.config is not None:
        try:
            static = list(load_index(settings.config))
        except (ConfigError, WorkflowError) as exc:
            _fail(str(exc), EXIT_USAGE)
    app, _runtime = create_app(settings, static)
    log_format: LogFormat = "json" if settings.log_format == "json" else "text"
    if log_format == "text":  # in JSON, every line is a log record: the start is logged once ready
        click.echo(
            f"worker {settings.app_id}: {len(static)} collectors from a file, managed ones from the topic "
            f"{settings.control_topic}; broker {settings.broker}; "
            f"stats at http://{settings.web_host}:{settings.web_port}/collectors/stats/",
            err=True,
        )
    Worker(app, loglevel=settings.log_level, quiet=True, log_format=log_format).execute_from_commandline()


@main.command()
@click.option("--events", "events_file", required=True, type=click.File("rb"), help="JSON lines; - for stdin.")
@click.option("--broker", default="kafka://127.0.0.1:9092", show_default=True, envvar="COLLECTORS_BROKER")
@click.option("--topic", default="predictions", show_default=True, envvar="COLLECTORS_PREDICTIONS_TOPIC")
def produce(events_file: Any, broker: str, topic: str) -> None:
    """Publish prediction events (one JSON per line, sent as they are) to the predictions topic."""
    from streams.kafka.producing import publish_lines

    lines = [line.rstrip(b"\r\n") for line in events_file if line.strip()]
    try:
        sent = asyncio.run(publish_lines(lines, bootstrap=broker, topic=topic, progress=True))
    except ConnectionError as exc:
        _fail(f"{exc}. Is Kafka running? Start it with `collectors kafka up`.", EXIT_UNREACHABLE)
    click.echo(f"published {sent} events to {topic}")


@main.command()
@click.option("--config", "config", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--events", "events_file", required=True, type=click.File("rb"), help="JSON lines; - for stdin.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--offline", is_flag=True, help="Call no model: model nodes let inputs through unjudged.")
def simulate(config: Path, events_file: Any, as_json: bool, offline: bool) -> None:
    """Run the configured collectors over events (no Kafka, nothing posted) and report what each would post.

    Model nodes call their models (one input at a time) unless --offline: then they judge nothing and
    the inputs pass them, counted as model_skipped in the funnel."""
    from streams.core.simulate import model_steps, offline_index
    from streams.core.simulate import simulate as run
    from streams.models.gateway import ModelGateway

    try:
        index = offline_index(config)
    except (ConfigError, WorkflowError) as exc:
        _fail(str(exc), EXIT_USAGE)
    for cid, labels in model_steps(index).items():
        action = "skipped (--offline): inputs pass unjudged" if offline else "call their models (--offline: do not)"
        click.echo(f"{cid}: {', '.join(labels)} {action}", err=True)

    async def simulated() -> Any:
        if offline or not model_steps(index):
            return await run(index, events_file)
        models = ModelGateway()
        try:
            return await run(index, events_file, models)
        finally:
            await models.close()
            click.echo(f"models: {models.stats.calls} calls, {models.stats.inputs} inputs", err=True)

    report = asyncio.run(simulated())
    if as_json:
        click.echo(orjson.dumps(report.as_json()).decode())
        return
    from streams.tools.display import funnel_table

    snapshot = report.ledger.snapshot()
    click.echo(funnel_table(snapshot["collectors"], delivered_label="would post"))
    events = snapshot["events"]
    click.echo(f"events: {events.get('events', 0)}, invalid: {events.get('dead_lettered', 0)}")
    for line, reason in report.invalid:
        click.echo(f"  line {line}: {reason}")


@main.command("schema")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Write the files into this folder.")
def schema_command(out: Path | None) -> None:
    """Print (or write) the published JSON Schemas: prediction events and collector configuration."""
    from schemas.export import SCHEMA_FILES, json_schema

    documents = {name: json_schema(model) for name, model in SCHEMA_FILES.items()}
    if out is None:
        click.echo(json.dumps(documents["prediction-event.schema.json"], indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        (out / name).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {out / name}")


@main.command()
@click.option("--kafka-port", default=9092, show_default=True, envvar="COLLECTORS_KAFKA_PORT")
@click.option("--workdir", default=".collectors/demo", show_default=True, type=click.Path(path_type=Path))
def demo(kafka_port: int, workdir: Path) -> None:
    """Run everything locally: Kafka, the reference destination, a worker, the bundled sample predictions."""
    from streams.tools.demo import run_demo

    posted = run_demo(kafka_port=kafka_port, workdir=workdir)
    if posted <= 0:
        _fail("the destination received no inputs; see the logs under " + str(workdir))


def _register_groups() -> None:
    from streams.services.destination.commands import destination
    from streams.services.model.commands import model
    from streams.services.tap.commands import tap
    from streams.tools.localkafka.commands import kafka
    from streams.tools.manage.commands import MANAGEMENT_COMMANDS, control

    main.add_command(kafka)
    main.add_command(destination)
    main.add_command(control)
    main.add_command(model)
    main.add_command(tap)
    for command in MANAGEMENT_COMMANDS:
        main.add_command(command)

    from streams.tools.operations.commands import backfill_command, dlq, stats_command, tail_command

    main.add_command(stats_command)
    main.add_command(dlq)
    main.add_command(backfill_command)
    main.add_command(tail_command)


_register_groups()
