"""The ``collectors`` command."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import orjson

from streams.tools import contexts
from streams.tools.exits import EXIT_UNREACHABLE, EXIT_USAGE
from streams.tools.lazy import LazyGroup

_MANAGE = "streams.tools.manage.commands"
_OPERATIONS = "streams.tools.operations.commands"
LAZY_COMMANDS = {
    "kafka": "streams.tools.localkafka.commands:kafka",
    "destination": "streams.services.destination.commands:destination",
    "model": "streams.services.model.commands:model",
    "tap": "streams.services.tap.commands:tap",
    "control": f"{_MANAGE}:control",
    "diff": f"{_MANAGE}:diff",
    "config": "streams.tools.config_commands:config",
    "validate": "streams.tools.validate:validate",
    **{name: f"{_MANAGE}:{name}" for name in ("create", "apply", "get", "patch", "delete", "pause", "resume")},
    "list": f"{_MANAGE}:list_command",
    "stats": f"{_OPERATIONS}:stats_command",
    "dlq": f"{_OPERATIONS}:dlq",
    "backfill": f"{_OPERATIONS}:backfill_command",
    "tail": f"{_OPERATIONS}:tail_command",
    "secrets": "streams.tools.secrets_commands:secrets",
}
"""The commands of other packages (``module:attribute``), imported when one of them is run."""

if TYPE_CHECKING:
    from streams.core.secrets import SecretBox


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="collectors", prog_name="collectors", message="%(prog)s %(version)s")
@click.option(
    "--context",
    envvar="COLLECTORS_CONTEXT",
    help="The context giving the defaults of this command [env COLLECTORS_CONTEXT]; see `collectors config`.",
)
def main(context: str | None) -> None:
    """Collectors: turn live prediction traffic on Kafka into training data.

    Shell completion: add this line to ~/.bashrc (zsh: zsh_source, in ~/.zshrc):

    \b
        eval "$(_COLLECTORS_COMPLETE=bash_source collectors)"
    """
    del context  # read by the commands, through streams.tools.contexts


def _setting_problem(error: Any) -> str:
    """A worker setting's validation error, named by its variable (an option of the same name sets it too)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    return f"COLLECTORS_{str(error['loc'][0]).upper()}: {message}, got {error['input']!r}"


def _fail(message: str, code: int = 1) -> NoReturn:
    from streams.core.secrets import KEY_REDACTION

    click.secho(f"error: {KEY_REDACTION.scrub(message)}", fg="red", err=True)
    sys.exit(code)


def _warn_unlisted_destinations(*, json_lines: bool) -> None:
    """Say a worker without an allow-list posts anywhere; as a JSON log line when the worker logs in JSON."""
    message = (
        "COLLECTORS_ALLOWED_DESTINATIONS is not set: managed collectors may post to any destination "
        "(set it to the management API's --allowed-destination list; docs/SECURITY.md)"
    )
    if json_lines:
        import logging

        from streams.core.logformat import JsonFormatter

        record = logging.LogRecord("collectors.worker", logging.WARNING, __file__, 0, message, None, None)
        click.echo(JsonFormatter().format(record), err=True)
    else:
        click.secho(f"warning: {message}", fg="yellow", err=True)


def _secret_box() -> SecretBox:
    """The deployment's secrets, with redaction of the keys they open installed; exit 2 when none is given."""
    from streams.core.secrets import SecretError, install_redaction, load_box

    install_redaction()
    try:
        return load_box()
    except SecretError as exc:
        _fail(str(exc), EXIT_USAGE)


@main.command()
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A static collectors file (YAML or JSON), run besides the managed collectors [env COLLECTORS_CONFIG].",
)
@click.option("--broker", help="Kafka bootstrap, kafka://host:port [env COLLECTORS_BROKER].")
@click.option("--web-port", type=int, help="Port of the worker's web server [env COLLECTORS_WEB_PORT].")
@click.option("--app-id", help="Consumer group shared by all workers [env COLLECTORS_APP_ID].")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The worker's local state [env COLLECTORS_DATA_DIR].",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log level [env COLLECTORS_LOG_LEVEL; default: info].",
)
@click.option("--control-topic", help="Compacted topic of managed collectors [env COLLECTORS_CONTROL_TOPIC].")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="json: one JSON object per line [env COLLECTORS_LOG_FORMAT].",
)
@click.option(
    "--worker-id",
    help="Stable name of this worker, unique in the group: a restart with it costs no rebalance (static "
    "membership; default: the host name in a container) [env COLLECTORS_WORKER_ID].",
)
@click.option(
    "--allowed-destination",
    "allowed_destinations",
    multiple=True,
    help="A base URL stored collectors may post to; repeatable [env COLLECTORS_ALLOWED_DESTINATIONS].",
)
def worker(**options: Any) -> None:
    """Run a Faust worker: select from the predictions topic, post to destinations.

    Start more workers with the same --app-id to spread the topic's partitions over them. The keys of managed
    collectors are opened with COLLECTORS_SECRET_KEY or COLLECTORS_SECRET_KEY_FILE (required).
    """
    from pydantic import ValidationError

    from streams.core.allowlist import AllowListError
    from streams.core.config import ConfigError, load_index
    from streams.core.logformat import LogFormat
    from streams.core.workflows import WorkflowError
    from streams.worker.app import allowed_destinations, create_app
    from streams.worker.faust_tuning import Worker
    from streams.worker.settings import WorkerSettings
    from streams.worker.topics import TopicLayoutError, prepare_topics

    box = _secret_box()
    options["allowed_destinations"] = ",".join(options["allowed_destinations"]) or None
    overrides = {k: v for k, v in options.items() if v is not None}
    for field, variable in (("broker", "COLLECTORS_BROKER"), ("app_id", "COLLECTORS_APP_ID")):
        if field not in overrides and variable not in os.environ and contexts.setting(field):
            overrides[field] = contexts.setting(field)
    try:
        settings = WorkerSettings(**overrides)
    except ValidationError as exc:
        _fail("invalid worker settings: " + "; ".join(_setting_problem(error) for error in exc.errors()), EXIT_USAGE)
    try:
        allowed = allowed_destinations(settings)
    except AllowListError as exc:
        _fail(str(exc), EXIT_USAGE)
    if allowed is None:
        _warn_unlisted_destinations(json_lines=settings.log_format == "json")
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
    app, _runtime = create_app(settings, box, static)
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
@click.option(
    "--broker",
    default=contexts.default("broker", "kafka://127.0.0.1:9092"),
    show_default="kafka://127.0.0.1:9092, or the context's",
    envvar="COLLECTORS_BROKER",
    help="Kafka bootstrap [env COLLECTORS_BROKER].",
)
@click.option(
    "--topic",
    default="predictions",
    show_default=True,
    envvar="COLLECTORS_PREDICTIONS_TOPIC",
    help="The predictions topic [env COLLECTORS_PREDICTIONS_TOPIC].",
)
def produce(events_file: Any, broker: str, topic: str) -> None:
    """Publish prediction events (one JSON per line, sent as they are) to the predictions topic."""
    from streams.kafka.producing import publish_lines
    from streams.tools.progress import progress

    lines = [line.rstrip(b"\r\n") for line in events_file if line.strip()]
    try:
        with progress(len(lines), f"publishing to {topic}") as advance:
            sent = asyncio.run(publish_lines(lines, bootstrap=broker, topic=topic, progress=advance))
    except ConnectionError as exc:
        _fail(f"{exc}. Is Kafka running? Start it with `collectors kafka up`.", EXIT_UNREACHABLE)
    click.echo(f"published {sent} events to {topic}")


@main.command()
@click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A collectors file (YAML or JSON).",
)
@click.option("--events", "events_file", required=True, type=click.File("rb"), help="JSON lines; - for stdin.")
@click.option("--offline", is_flag=True, help="Fetch nothing: image steps let inputs given by URL through, unjudged.")
@click.option("--wide", is_flag=True, help="A column per workflow step (the default fits 100 columns).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def simulate(config: Path, events_file: Any, offline: bool, wide: bool, as_json: bool) -> None:
    """Run the configured collectors over events and report what each would post: no Kafka, nothing posted.

    The steps that load images (image_check, near_duplicate) fetch the images given by URL, as a worker
    would; with --offline they fetch nothing and count those inputs as not judged. Inline (base64) images
    are always judged. Model nodes call their models (one input at a time); with --offline they call none
    and let inputs through unjudged (model_skipped in the funnel). Progress goes to stderr.
    """
    from streams.core.config import ConfigError
    from streams.core.simulate import fetching_steps, model_steps, offline_index
    from streams.core.simulate import simulate as run
    from streams.core.workflows import WorkflowError
    from streams.models.gateway import ModelGateway
    from streams.tools.progress import progress

    try:
        index = offline_index(config)
    except (ConfigError, WorkflowError) as exc:
        _fail(str(exc), EXIT_USAGE)
    for cid, labels in fetching_steps(index).items():
        action = "skip images given by URL (--offline)" if offline else "fetch images given by URL (--offline: do not)"
        click.echo(f"{cid}: {', '.join(labels)} {action}", err=True)
    for cid, labels in model_steps(index).items():
        action = "skipped (--offline): inputs pass unjudged" if offline else "call their models (--offline: do not)"
        click.echo(f"{cid}: {', '.join(labels)} {action}", err=True)
    lines = events_file.read().splitlines()
    calls_models = bool(model_steps(index)) and not offline

    async def simulated(advance: Any) -> Any:
        models = ModelGateway() if calls_models else None
        try:
            return await run(index, lines, offline=offline, progress=lambda _: advance(1), models=models)
        finally:
            if models is not None:
                await models.close()
                click.echo(f"models: {models.stats.calls} calls, {models.stats.inputs} inputs", err=True)

    with progress(len(lines), "simulating") as advance:
        report = asyncio.run(simulated(advance))
    if as_json:
        click.echo(orjson.dumps(report.as_json()).decode())
        return
    from streams.tools.display import funnel_table

    snapshot = report.ledger.snapshot()
    click.echo(funnel_table(snapshot["collectors"], delivered_label="would post", wide=wide))
    events = snapshot["events"]
    click.echo(f"events: {events.get('events', 0)}, invalid: {events.get('dead_lettered', 0)}")
    for line, reason in report.invalid:
        click.echo(f"  line {line}: {reason}")
    for (cid, label), count in sorted(report.fetched.items()):
        click.echo(f"{cid}: {label} fetched {count} image URLs")
    for (cid, label), count in sorted(report.not_judged.items()):
        click.echo(f"{cid}: {label} did not judge {count} inputs given by URL (offline); they count as passing")


@main.command("schema")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Write the files into this folder.")
def schema_command(out: Path | None) -> None:
    """Print (or write) the published JSON Schemas: prediction events and collector configuration.

    Printed, they form one JSON object keyed by file name.
    """
    from schemas.export import SCHEMA_FILES, json_schema

    documents = {name: json_schema(model) for name, model in SCHEMA_FILES.items()}
    if out is None:
        click.echo(json.dumps(documents, indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        (out / name).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {out / name}")


@main.command()
@click.option(
    "--kafka-port",
    default=9092,
    show_default=True,
    envvar="COLLECTORS_KAFKA_PORT",
    help="Port of the demo's Kafka broker (and port + 1) [env COLLECTORS_KAFKA_PORT, for make demo].",
)
@click.option(
    "--workdir",
    default=".collectors/demo",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The demo's database and logs (emptied at start).",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Run these collectors instead of the shipped ones (e.g. examples/active-learning/collectors.yaml).",
)
def demo(kafka_port: int, workdir: Path, config: Path | None) -> None:
    """Run everything locally: Kafka, the reference destination, a worker, the shipped sample predictions.

    The destination gets an app and a key for each collector's destination (the key in its key_env), and
    COLLECTORS_DESTINATION_URL points at it. Nothing is fetched beyond loopback: the sample images are inline.
    """
    from streams.core.config import ConfigError
    from streams.tools.demo import run_demo
    from streams.tools.localkafka import LocalKafkaError

    try:
        posted = run_demo(kafka_port=kafka_port, workdir=workdir, config=config)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    except LocalKafkaError as exc:
        _fail(f"{exc}: `collectors demo --kafka-port PORT`, or `COLLECTORS_KAFKA_PORT=PORT make demo`")
    if posted <= 0:
        _fail("the destination received no inputs; see the logs under " + str(workdir))
