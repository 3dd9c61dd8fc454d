"""`control` CLI: serve the management API, and manage collectors and workflows through it.

The management commands (create, apply, list, get, patch, delete, pause, resume) are also meant to be added
at the top level of the `collectors` command. Exit codes: 0 ok, 2 usage error, 3 refused by the API (4xx),
4 the API (or something behind it) unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from aiokafka.errors import KafkaError

from schemas.collectors import Collector, CollectorsDocument
from schemas.management import CONTROL_TOPIC
from streams.core.config import ConfigError, read_document, resolve_key
from streams.tools.exits import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE
from streams.tools.manage.client import ApiError, ControlClient, ServiceUnreachable

DEFAULT_API = "http://127.0.0.1:8090"
VIEW_ONLY_FIELDS = ("created_at", "modified_at", "last_error")

F = TypeVar("F", bound=Callable[..., Any])


class CommandFailed(click.ClickException):
    """A failure with its exit code; the message says what to do."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Caller:
    """Who calls which API, for which app, and how results are printed."""

    client: ControlClient
    user_id: str | None
    app_id: str | None
    as_json: bool

    def app(self) -> tuple[str, str]:
        """The --user/--app pair, required by commands that act on one app."""
        if self.user_id is None or self.app_id is None:
            raise CommandFailed(
                "name the app: pass --user and --app (or set COLLECTORS_USER and COLLECTORS_APP)", EXIT_USAGE
            )
        return self.user_id, self.app_id


def api_options(func: F) -> F:
    """Options shared by the management commands."""
    options = [
        click.option(
            "--api", default=DEFAULT_API, show_default=True, envvar="COLLECTORS_API", help="Management API URL."
        ),
        click.option("--key", envvar="COLLECTORS_API_KEY", help="Your API key [env COLLECTORS_API_KEY]."),
        click.option("--user", "user_id", envvar="COLLECTORS_USER", help="User owning the app [env COLLECTORS_USER]."),
        click.option("--app", "app_id", envvar="COLLECTORS_APP", help="App of the collectors [env COLLECTORS_APP]."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _caller(api: str, key: str | None, user_id: str | None, app_id: str | None, as_json: bool) -> Caller:
    if not key:
        raise CommandFailed("no API key: pass --key or set COLLECTORS_API_KEY (a key of the app's owner)", EXIT_USAGE)
    return Caller(ControlClient(api, key), user_id, app_id, as_json)


@contextmanager
def _api_errors() -> Iterator[None]:
    """API refusals and outages as CLI failures with their exit codes."""
    try:
        yield
    except ApiError as exc:
        raise CommandFailed(str(exc), EXIT_REFUSED if exc.http_status < 500 else EXIT_UNREACHABLE) from None
    except ServiceUnreachable as exc:
        raise CommandFailed(
            f"{exc}; start it with `collectors control serve` or point --api (COLLECTORS_API) at it", EXIT_UNREACHABLE
        ) from None


def _plural(workflows: bool) -> str:
    return "workflows" if workflows else "collectors"


# --- output ------------------------------------------------------------------------------------------------


def _echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]
    )


def _steps(item: dict[str, Any]) -> str:
    steps = []
    if item.get("pre_queue_random_sample") is not None:
        steps.append(f"sample {item['pre_queue_random_sample']}")
    if item.get("pre_queue_workflow_id"):
        steps.append(f"pre {item['pre_queue_workflow_id']}")
    if item.get("post_queue_workflow_id"):
        steps.append(f"post {item['post_queue_workflow_id']}")
    return ", ".join(steps)


STATUS_LABELS = {52001: "active", 52002: "paused", 52003: "paused"}


def _status_label(status: Any) -> str:
    """A collector's status as a word (responses carry a Status message: 52001 active, 52002/52003 paused)."""
    if not isinstance(status, dict):
        return str(status)
    code = status.get("code")
    return STATUS_LABELS.get(code, str(code)) if isinstance(code, int) else str(code)


def _source_of(collector: dict[str, Any]) -> dict[str, Any]:
    """The model a collector watches, in either spelling."""
    if "source" in collector:
        return dict(collector["source"])
    return dict(collector["collector_source"]["api_post_model_outputs_collector_source"])


def _rows(plural: str, items: Sequence[dict[str, Any]]) -> str:
    if plural == "workflows":
        rows = [[w["id"], " → ".join(n["operator"] for n in w["nodes"]), w["modified_at"]] for w in items]
        return _table(["ID", "NODES", "MODIFIED"], rows)
    rows = [
        [
            c["id"],
            _status_label(c["status"]),
            "/".join(_source_of(c)[k] for k in ("model_user_id", "model_app_id", "model_id")),
            _steps(c),
            c["modified_at"],
            c.get("last_error") or "",
        ]
        for c in items
    ]
    return _table(["ID", "STATUS", "MODEL", "STEPS", "MODIFIED", "LAST ERROR"], rows)


def _show(plural: str, items: Sequence[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        _echo_json({plural: list(items)})
    elif items:
        click.echo(_rows(plural, items))
    else:
        click.echo(f"no {plural}")


# --- documents: create, apply, patch -----------------------------------------------------------------------


@dataclass
class AppItems:
    """What a document holds for one app."""

    workflows: list[dict[str, Any]] = field(default_factory=list)
    collectors: list[dict[str, Any]] = field(default_factory=list)


def _collector_body(collector: Collector) -> dict[str, Any]:
    """A collector as the API takes it: its key resolved (a `key_env` is read from this environment)."""
    try:
        key = resolve_key(collector)
    except ConfigError as exc:
        raise CommandFailed(f"{exc}: set it, or give destination.key in the file", EXIT_USAGE) from None
    body = collector.model_dump(mode="json", exclude={"destination": {"key_env"}})
    body["destination"]["key"] = key
    return body


def _by_app(path: Path, user_id: str | None, app_id: str | None) -> dict[tuple[str, str], AppItems]:
    """The document's items by target app: a collector's is its destination's; a workflow goes to --user/--app
    when given, else to the apps of the collectors that use it."""
    try:
        document: CollectorsDocument = read_document(path)
    except ConfigError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    apps: defaultdict[tuple[str, str], AppItems] = defaultdict(AppItems)
    users_of: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
    for collector in document.collectors:
        target = (collector.destination.user_id, collector.destination.app_id)
        apps[target].collectors.append(_collector_body(collector))
        for workflow_id in (collector.pre_queue_workflow_id, collector.post_queue_workflow_id):
            if workflow_id is not None:
                users_of[workflow_id].add(target)
    for workflow in document.workflows:
        targets = {(user_id, app_id)} if user_id and app_id else users_of.get(workflow.id)
        if not targets:
            raise CommandFailed(
                f"workflow {workflow.id!r} is used by no collector of {path}: pass --user and --app to say its app",
                EXIT_USAGE,
            )
        for target in sorted(targets):
            apps[target].workflows.append(workflow.model_dump(mode="json"))
    return dict(apps)


def _report(caller: Caller, outcomes: list[dict[str, str]]) -> None:
    if caller.as_json:
        _echo_json({"results": outcomes})
        return
    rows = [[o["kind"], f"{o['user_id']}/{o['app_id']}", o["id"], o["outcome"]] for o in outcomes]
    click.echo(_table(["KIND", "APP", "ID", "OUTCOME"], rows) if rows else "nothing in the file")


def _outcome(kind: str, target: tuple[str, str], item_id: str, outcome: str) -> dict[str, str]:
    return {"kind": kind, "user_id": target[0], "app_id": target[1], "id": item_id, "outcome": outcome}


def _apply_items(
    caller: Caller, plural: str, target: tuple[str, str], items: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """Create what is missing, overwrite what exists; an overwrite that changes nothing is reported unchanged."""
    known = {item["id"]: item["modified_at"] for item in caller.client.list_all(plural, *target)}
    created = caller.client.create(plural, *target, [i for i in items if i["id"] not in known])
    overwritten = caller.client.overwrite(plural, *target, [i for i in items if i["id"] in known])
    return [_outcome(plural[:-1], target, item["id"], "created") for item in created] + [
        _outcome(
            plural[:-1], target, item["id"], "unchanged" if item["modified_at"] == known[item["id"]] else "overwritten"
        )
        for item in overwritten
    ]


def _run_document(caller: Caller, path: Path, mode: str) -> None:
    """Send a document's workflows (first), then its collectors, app by app."""
    apps = _by_app(path, caller.user_id, caller.app_id)
    outcomes: list[dict[str, str]] = []
    with _api_errors():
        for plural in ("workflows", "collectors"):
            for target, items in sorted(apps.items()):
                batch: list[dict[str, Any]] = getattr(items, plural)
                if not batch:
                    continue
                if mode == "apply":
                    outcomes.extend(_apply_items(caller, plural, target, batch))
                    continue
                send, outcome = (
                    (caller.client.create, "created") if mode == "create" else (caller.client.overwrite, "overwritten")
                )
                outcomes.extend(_outcome(plural[:-1], target, i["id"], outcome) for i in send(plural, *target, batch))
    _report(caller, outcomes)


file_option = click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A collectors document (YAML or JSON): collectors and workflows.",
)


@click.command()
@file_option
@api_options
def create(path: Path, api: str, key: str | None, user_id: str | None, app_id: str | None, as_json: bool) -> None:
    """Create the workflows, then the collectors, of a document (refused if any exists)."""
    _run_document(_caller(api, key, user_id, app_id, as_json), path, "create")


@click.command()
@file_option
@api_options
def apply(path: Path, api: str, key: str | None, user_id: str | None, app_id: str | None, as_json: bool) -> None:
    """Create or overwrite the workflows, then the collectors, of a document (idempotent).

    A collector's app is its destination's; a workflow goes to --user/--app, or else to the apps of the
    collectors using it. A `key_env` is read from this command's environment and sent as the key.
    """
    _run_document(_caller(api, key, user_id, app_id, as_json), path, "apply")


@click.command()
@file_option
@api_options
def patch(path: Path, api: str, key: str | None, user_id: str | None, app_id: str | None, as_json: bool) -> None:
    """Overwrite the workflows, then the collectors, of a document (refused if any is missing)."""
    _run_document(_caller(api, key, user_id, app_id, as_json), path, "overwrite")


# --- one app: list, get, delete, pause, resume -------------------------------------------------------------


workflows_flag = click.option("--workflows", is_flag=True, help="Act on workflows instead of collectors.")


@click.command("list")
@workflows_flag
@api_options
def list_command(
    workflows: bool, api: str, key: str | None, user_id: str | None, app_id: str | None, as_json: bool
) -> None:
    """List the app's collectors (or workflows), in id order."""
    caller = _caller(api, key, user_id, app_id, as_json)
    plural = _plural(workflows)
    with _api_errors():
        items = caller.client.list_all(plural, *caller.app())
    _show(plural, items, as_json)


@click.command()
@click.argument("item_id", metavar="ID")
@workflows_flag
@api_options
def get(
    item_id: str, workflows: bool, api: str, key: str | None, user_id: str | None, app_id: str | None, as_json: bool
) -> None:
    """Show one collector (or workflow); its key is shown redacted."""
    caller = _caller(api, key, user_id, app_id, as_json)
    plural = _plural(workflows)
    with _api_errors():
        item = caller.client.get(plural, *caller.app(), item_id)
    if as_json:
        _echo_json({plural[:-1]: item})
    else:
        click.echo(_rows(plural, [item]))
        if not workflows:
            click.echo(f"\ndestination: {item['destination']['base_url']}  key {item['destination']['key']}")


@click.command()
@click.argument("ids", nargs=-1, metavar="ID...")
@click.option("--all", "delete_all", is_flag=True, help="Delete all of the app's collectors (or workflows).")
@workflows_flag
@api_options
def delete(
    ids: tuple[str, ...],
    delete_all: bool,
    workflows: bool,
    api: str,
    key: str | None,
    user_id: str | None,
    app_id: str | None,
    as_json: bool,
) -> None:
    """Delete collectors (or workflows) by id, or --all of them."""
    if bool(ids) == delete_all:
        raise CommandFailed("give the ids to delete, or --all (not both)", EXIT_USAGE)
    caller = _caller(api, key, user_id, app_id, as_json)
    plural = _plural(workflows)
    with _api_errors():
        deleted = caller.client.delete(plural, *caller.app(), None if delete_all else list(ids))
    if as_json:
        _echo_json({"deleted": deleted})
    else:
        click.echo(f"deleted {len(deleted)} {plural}: {', '.join(deleted)}" if deleted else f"no {plural} to delete")


def _set_status(
    status: str, ids: tuple[str, ...], api: str, key: str | None, user_id: str | None, app_id: str | None, as_json: bool
) -> None:
    """Overwrite each collector with its status changed; the stored key is kept (sent without one)."""
    caller = _caller(api, key, user_id, app_id, as_json)
    target = caller.app()
    with _api_errors():
        bodies = []
        for item_id in ids:
            item = caller.client.get("collectors", *target, item_id)
            body = {k: v for k, v in item.items() if k not in VIEW_ONLY_FIELDS}
            body["destination"] = {k: v for k, v in item["destination"].items() if k not in ("key", "key_env")}
            bodies.append({**body, "status": status})
        stored = caller.client.overwrite("collectors", *target, bodies)
    _show("collectors", stored, as_json)


@click.command()
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@api_options
def pause(
    ids: tuple[str, ...], api: str, key: str | None, user_id: str | None, app_id: str | None, as_json: bool
) -> None:
    """Pause collectors: they keep their place and collect nothing."""
    _set_status("paused", ids, api, key, user_id, app_id, as_json)


@click.command()
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@api_options
def resume(
    ids: tuple[str, ...], api: str, key: str | None, user_id: str | None, app_id: str | None, as_json: bool
) -> None:
    """Resume paused collectors (their key is checked again at the destination)."""
    _set_status("active", ids, api, key, user_id, app_id, as_json)


MANAGEMENT_COMMANDS: tuple[click.Command, ...] = (create, apply, list_command, get, patch, delete, pause, resume)


def watched_options(func: F) -> F:
    """The workers whose funnels the page shows: their app id and topics (the workers' own settings)."""
    page = "the workers' {}, for the funnel page at GET /"
    options = [
        click.option(
            "--app-id", default="collectors", show_default=True, envvar="COLLECTORS_APP_ID", help=page.format("app id")
        ),
        click.option(
            "--predictions-topic",
            default="predictions",
            envvar="COLLECTORS_PREDICTIONS_TOPIC",
            help=page.format("topic"),
        ),
        click.option(
            "--queue-topic", default="collectors-queue", envvar="COLLECTORS_QUEUE_TOPIC", help=page.format("topic")
        ),
        click.option(
            "--dead-letter-topic",
            default="collectors-dead-letters",
            envvar="COLLECTORS_DEAD_LETTER_TOPIC",
            help=page.format("topic"),
        ),
        click.option(
            "--log-format",
            type=click.Choice(["text", "json"]),
            default="text",
            envvar="COLLECTORS_LOG_FORMAT",
            help="json: one JSON object per line.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group()
def control() -> None:
    """The management API of collectors: serve it, and manage collectors and workflows through it."""


@control.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8090, show_default=True, type=click.IntRange(0, 65535), help="0 = any free port.")
@click.option("--broker", default="kafka://127.0.0.1:9092", show_default=True, envvar="COLLECTORS_BROKER")
@click.option("--topic", default=CONTROL_TOPIC, show_default=True, envvar="COLLECTORS_CONTROL_TOPIC")
@click.option(
    "--auth-url",
    required=True,
    envvar="COLLECTORS_AUTH_URL",
    help="Base URL of the service owning users, apps and keys (its MyScopes, GET /v2/users/{u}/apps/{a}/myscopes, "
    "checks every caller); https://api.clarifai.com works.",
)
@click.option(
    "--destination-url",
    envvar="COLLECTORS_DESTINATION_URL",
    help="Base URL collectors post their inputs to when they name none (Clarifai's spelling never does) "
    "[default: --auth-url].",
)
@click.option(
    "--grpc-port",
    type=click.IntRange(0, 65535),
    help="Also serve Clarifai's Collector calls over gRPC (service clarifai.api.V2, no TLS) on this port.",
)
@click.option("--timeout", "timeout_s", default=10.0, show_default=True, help="Seconds allowed to each key check.")
@watched_options
def serve(
    host: str,
    port: int,
    broker: str,
    topic: str,
    auth_url: str,
    destination_url: str | None,
    grpc_port: int | None,
    timeout_s: float,
    log_format: str,
    **watched: str,
) -> None:
    """Serve the management API until SIGINT or SIGTERM (and the funnel page of the workers at GET /)."""
    from streams.core.logformat import configure
    from streams.services.management.api import serve as serve_api
    from streams.services.management.funnel import Watched

    configure(logging.INFO, "json" if log_format == "json" else "text")

    def ready(url: str) -> None:
        click.echo(f"management API listening on {url} (topic {topic} on {broker}, keys checked at {auth_url})")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve_api(
            broker,
            topic,
            auth_url,
            host,
            port,
            stop=stop,
            timeout_s=timeout_s,
            on_ready=ready,
            destination_url=destination_url,
            grpc_port=grpc_port,
            watched=Watched(broker, **watched),
        )

    try:
        asyncio.run(main())
    except (ConnectionError, KafkaError) as exc:
        raise CommandFailed(
            f"cannot reach Kafka at {broker} ({exc}); start it with `collectors kafka up` or pass --broker",
            EXIT_UNREACHABLE,
        ) from None
    except OSError as exc:
        raise CommandFailed(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --host/--port", EXIT_USAGE
        ) from None
    click.echo("management API stopped")


for _command in MANAGEMENT_COMMANDS:
    control.add_command(_command)
