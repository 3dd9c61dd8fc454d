"""`control` CLI: serve the management API, and manage collectors and workflows through it.

The management commands (create, apply, list, get, patch, delete, pause, resume) are also meant to be added
at the top level of the `collectors` command. Exit codes: 0 ok, 2 usage error, 3 refused by the API (4xx),
4 the API (or something behind it) unreachable.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from aiokafka.errors import KafkaError

from schemas.management import CONTROL_TOPIC
from streams.core.secrets import KEY_REDACTION
from streams.tools import contexts
from streams.tools.exits import EXIT_FAILURE, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE
from streams.tools.manage import changes
from streams.tools.manage.client import ApiError, ControlClient, ServiceUnreachable
from streams.tools.manage.documents import DocumentError, by_app

DEFAULT_API = "http://127.0.0.1:8090"

F = TypeVar("F", bound=Callable[..., Any])


class CommandFailed(click.ClickException):
    """A failure with its exit code; the message says what to do."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(KEY_REDACTION.scrub(message))
        self.exit_code = exit_code


@dataclass(frozen=True)
class Caller:
    """Who calls which API, for which app, and how results are printed."""

    client: ControlClient
    user_id: str | None
    app_id: str | None
    as_json: bool

    def app(self) -> tuple[str, str]:
        """The app acted on: --user/--app, else the context's, else the one the key names (MyScopes)."""
        if self.user_id is not None and self.app_id is not None:
            return self.user_id, self.app_id
        with _api_errors():
            key_user, key_app = self.client.myscopes()
        if key_app is None and self.app_id is None:
            raise CommandFailed(
                f"your key covers every app of user {key_user}: name one with --app "
                "(or COLLECTORS_APP, or a context's --app)",
                EXIT_USAGE,
            )
        return self.user_id or key_user, self.app_id or str(key_app)


def api_options(func: F) -> F:
    """Options shared by the management commands; what is not given comes from the context in use."""
    options = [
        click.option(
            "--api", envvar="COLLECTORS_API", help=f"Management API URL [env COLLECTORS_API; default: {DEFAULT_API}]."
        ),
        click.option("--key", envvar="COLLECTORS_API_KEY", help="Your API key [env COLLECTORS_API_KEY]."),
        click.option("--user", "user_id", envvar="COLLECTORS_USER", help="User owning the app [env COLLECTORS_USER]."),
        click.option("--app", "app_id", envvar="COLLECTORS_APP", help="App of the collectors [env COLLECTORS_APP]."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _caller(api: str | None, key: str | None, user_id: str | None, app_id: str | None, as_json: bool) -> Caller:
    """Flags and COLLECTORS_* variables first, then the context in use, then the defaults."""
    key = key or contexts.key()
    if not key:
        raise CommandFailed(
            "no API key: pass --key, set COLLECTORS_API_KEY, or use a context with a key "
            "(`collectors config set-context NAME --key-env VAR`)",
            EXIT_USAGE,
        )
    KEY_REDACTION.remember(key)
    return Caller(
        ControlClient(api or contexts.setting("api") or DEFAULT_API, key),
        user_id or contexts.setting("user"),
        app_id or contexts.setting("app"),
        as_json,
    )


@contextmanager
def _api_errors(document: Path | None = None) -> Iterator[None]:
    """API refusals and outages as CLI failures with their exit codes; a create refused because items
    exist points at `collectors apply` for ``document``."""
    try:
        yield
    except ApiError as exc:
        message = str(exc)
        if document is not None and exc.http_status == 409:
            message = (
                f"{exc.description} (HTTP 409, code {exc.code}): {exc.details.split(';')[0]}; "
                f"to create or overwrite them, run `collectors apply -f {shlex.quote(str(document))}`"
            )
        raise CommandFailed(message, EXIT_REFUSED if exc.http_status < 500 else EXIT_UNREACHABLE) from None
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


# --- documents: create, apply, patch, diff ----------------------------------------------------------------


def _report(caller: Caller, outcomes: list[dict[str, str]]) -> None:
    if caller.as_json:
        _echo_json({"results": outcomes})
        return
    rows = [[o["kind"], f"{o['user_id']}/{o['app_id']}", o["id"], o["outcome"]] for o in outcomes]
    click.echo(_table(["KIND", "APP", "ID", "OUTCOME"], rows) if rows else "nothing in the file")


def _outcome(kind: str, target: tuple[str, str], item_id: str, outcome: str) -> dict[str, str]:
    return {"kind": kind, "user_id": target[0], "app_id": target[1], "id": item_id, "outcome": outcome}


def _send_items(
    caller: Caller, mode: str, plural: str, target: tuple[str, str], items: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """Create what is missing (apply, create) and overwrite what exists (apply, overwrite); an overwrite
    that changes nothing is reported unchanged."""
    known = {} if mode == "create" else {i["id"]: i["modified_at"] for i in caller.client.list_all(plural, *target)}
    fresh = {i["id"] for i in items if mode == "create" or (mode == "apply" and i["id"] not in known)}
    created = caller.client.create(plural, *target, [i for i in items if i["id"] in fresh])
    overwritten = caller.client.overwrite(plural, *target, [i for i in items if i["id"] not in fresh])
    return [_outcome(plural[:-1], target, item["id"], "created") for item in created] + [
        _outcome(
            plural[:-1],
            target,
            item["id"],
            "unchanged" if item["modified_at"] == known.get(item["id"]) else "overwritten",
        )
        for item in overwritten
    ]


def _read(path: Path, caller: Caller) -> dict[tuple[str, str], Any]:
    try:
        return by_app(path, caller.user_id, caller.app_id)
    except DocumentError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None


def _batches(apps: dict[tuple[str, str], Any]) -> Iterator[tuple[str, tuple[str, str], list[dict[str, Any]]]]:
    """(plural, app, items) of a document: workflows first (collectors refer to them), app by app."""
    for plural in ("workflows", "collectors"):
        for target, items in sorted(apps.items()):
            batch: list[dict[str, Any]] = getattr(items, plural)
            if batch:
                yield plural, target, batch


def _changes(
    caller: Caller, apps: dict[tuple[str, str], Any], mode: str
) -> list[tuple[str, tuple[str, str], changes.Change]]:
    """(plural, app, change) of each item of a document against what the API stores."""
    return [
        (plural, target, change)
        for plural, target, batch in _batches(apps)
        for change in changes.compare(batch, caller.client.list_all(plural, *target), mode)
    ]


def _run_document(caller: Caller, path: Path, mode: str, *, dry_run: bool = False) -> None:
    """Send a document's workflows (first), then its collectors, app by app; or say what that would do."""
    apps = _read(path, caller)
    outcomes: list[dict[str, str]] = []
    with _api_errors(path if mode == "create" else None):
        if dry_run:
            for plural, target, change in _changes(caller, apps, mode):
                outcomes.append(_outcome(plural[:-1], target, change.item_id, change.outcome))
        else:
            for plural, target, batch in _batches(apps):
                outcomes.extend(_send_items(caller, mode, plural, target, batch))
    _report(caller, outcomes)
    if dry_run and any(o["outcome"].startswith(("missing", "exists")) for o in outcomes):
        raise CommandFailed("the API would refuse this document (see above)", EXIT_REFUSED)


file_option = click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A collectors document (YAML or JSON): collectors and workflows.",
)


dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Say what would be created, overwritten or left unchanged; change nothing."
)


@click.command()
@file_option
@dry_run_option
@api_options
def create(
    path: Path, dry_run: bool, api: str | None, key: str | None, user_id: str | None, app_id: str | None, as_json: bool
) -> None:
    """Create the workflows, then the collectors, of a document (refused if any exists)."""
    _run_document(_caller(api, key, user_id, app_id, as_json), path, "create", dry_run=dry_run)


@click.command()
@file_option
@dry_run_option
@api_options
def apply(
    path: Path, dry_run: bool, api: str | None, key: str | None, user_id: str | None, app_id: str | None, as_json: bool
) -> None:
    """Create or overwrite the workflows, then the collectors, of a document (idempotent).

    A collector's app is its destination's; a workflow goes to --user/--app, or else to the apps of the
    collectors using it. A `key_env` is read from this command's environment and sent as the key; a
    `concept_map` graph file is read here and sent inline. A collector given without any key keeps its
    stored one (as `collectors get -o yaml` writes it).
    """
    _run_document(_caller(api, key, user_id, app_id, as_json), path, "apply", dry_run=dry_run)


@click.command()
@file_option
@dry_run_option
@api_options
def patch(
    path: Path, dry_run: bool, api: str | None, key: str | None, user_id: str | None, app_id: str | None, as_json: bool
) -> None:
    """Overwrite the workflows, then the collectors, of a document (refused if any is missing)."""
    _run_document(_caller(api, key, user_id, app_id, as_json), path, "overwrite", dry_run=dry_run)


@click.command()
@file_option
@api_options
def diff(path: Path, api: str | None, key: str | None, user_id: str | None, app_id: str | None, as_json: bool) -> None:
    """Show what `apply -f FILE` would change, as unified diffs of YAML (live, then the file's).

    Exit code 0 when nothing would change, 1 when something would. Keys are compared redacted.
    """
    caller = _caller(api, key, user_id, app_id, as_json)
    apps = _read(path, caller)
    with _api_errors():
        found = _changes(caller, apps, "apply")
    differing = [(f"{plural}/{'/'.join(app)}/{c.item_id}", c) for plural, app, c in found if c.outcome != "unchanged"]
    if as_json:
        items = [{"item": label, "outcome": c.outcome, "live": c.live, "file": c.wanted} for label, c in differing]
        _echo_json({"changes": items})
    else:
        for label, change in differing:
            click.echo(change.diff(label), nl=False)
    if differing:
        raise SystemExit(EXIT_FAILURE)


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
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "yaml", "json"]),
    default="table",
    show_default=True,
    help="yaml/json: a document `collectors apply -f` takes back (with the workflows a collector uses).",
)
@api_options
def get(
    item_id: str,
    workflows: bool,
    output: str,
    api: str | None,
    key: str | None,
    user_id: str | None,
    app_id: str | None,
    as_json: bool,
) -> None:
    """Show one collector (or workflow); its key is shown redacted, and left out of -o yaml|json."""
    caller = _caller(api, key, user_id, app_id, as_json)
    plural = _plural(workflows)
    with _api_errors():
        target = caller.app()
        item = caller.client.get(plural, *target, item_id)
        document = _document_of(caller, target, plural, item) if output != "table" else {}
    if output == "yaml":
        click.echo(changes.as_yaml(document), nl=False)
    elif output == "json":
        _echo_json(document)
    elif as_json:
        _echo_json({plural[:-1]: item})
    else:
        click.echo(_rows(plural, [item]))
        if not workflows:
            click.echo(f"\ndestination: {item['destination']['base_url']}  key {item['destination']['key']}")


def _document_of(caller: Caller, target: tuple[str, str], plural: str, item: dict[str, Any]) -> dict[str, Any]:
    """A collectors document of one item: a collector comes with the workflows it uses and without its key
    (applied back, it keeps the stored one)."""
    if plural == "workflows":
        return {"workflows": [changes.shown(item)]}
    collector = changes.shown(item)
    collector["destination"] = {k: v for k, v in collector["destination"].items() if k != "key"}
    used = [item.get(field) for field in ("pre_queue_workflow_id", "post_queue_workflow_id")]
    workflows = [changes.shown(caller.client.get("workflows", *target, wid)) for wid in dict.fromkeys(used) if wid]
    return {"collectors": [collector], **({"workflows": workflows} if workflows else {})}


@click.command()
@click.argument("ids", nargs=-1, metavar="ID...")
@click.option("--all", "delete_all", is_flag=True, help="Delete all of the app's collectors (or workflows).")
@click.option("-y", "--yes", "confirmed", is_flag=True, help="Do not ask before deleting --all.")
@workflows_flag
@api_options
def delete(
    ids: tuple[str, ...],
    delete_all: bool,
    confirmed: bool,
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
    target = caller.app()
    if delete_all and not confirmed:
        click.confirm(f"delete every {plural[:-1]} of app {'/'.join(target)}?", abort=True, err=True)
    with _api_errors():
        deleted = caller.client.delete(plural, *target, None if delete_all else list(ids))
    if as_json:
        _echo_json({"deleted": deleted})
    else:
        click.echo(f"deleted {len(deleted)} {plural}: {', '.join(deleted)}" if deleted else f"no {plural} to delete")


def _set_status(
    status: str,
    ids: tuple[str, ...],
    api: str | None,
    key: str | None,
    user_id: str | None,
    app_id: str | None,
    as_json: bool,
) -> None:
    """Overwrite each collector with its status changed; the stored key is kept (sent without one)."""
    caller = _caller(api, key, user_id, app_id, as_json)
    target = caller.app()
    with _api_errors():
        items = [caller.client.get("collectors", *target, item_id) for item_id in ids]
        bodies = []
        for item in items:
            body = {k: v for k, v in item.items() if k not in changes.VIEW_ONLY_FIELDS}
            body["destination"] = {k: v for k, v in item["destination"].items() if k not in ("key", "key_env")}
            bodies.append({**body, "status": status})
        stored = caller.client.overwrite("collectors", *target, bodies)
    if as_json:
        _echo_json({"collectors": stored})
        return
    done = "paused" if status == "paused" else "resumed"
    for before in items:
        was = "already " + status if _status_label(before["status"]) == status else done
        click.echo(f"collector {before['id']} of {'/'.join(target)}: {was}")


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
    page = "The workers' {}, for the funnel page at GET /."
    options = [
        click.option(
            "--app-id",
            default=contexts.default("app_id", "collectors"),
            show_default="collectors, or the context's",
            envvar="COLLECTORS_APP_ID",
            help=page.format("app id"),
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
@click.option(
    "--broker",
    default=contexts.default("broker", "kafka://127.0.0.1:9092"),
    show_default="kafka://127.0.0.1:9092, or the context's",
    envvar="COLLECTORS_BROKER",
    help="Kafka bootstrap [env COLLECTORS_BROKER].",
)
@click.option(
    "--control-topic",
    "--topic",
    "topic",
    default=CONTROL_TOPIC,
    show_default=True,
    envvar="COLLECTORS_CONTROL_TOPIC",
    help="The compacted topic collectors are stored in (the workers' --control-topic).",
)
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
@click.option(
    "--allowed-destination",
    "allowed_destinations",
    multiple=True,
    help="A base URL collectors may post to; repeatable [env COLLECTORS_ALLOWED_DESTINATIONS, comma-separated]."
    " Default: the --auth-url and --destination-url services.",
)
@click.option("--max-body-bytes", default=1_048_576, show_default=True, type=click.IntRange(1024), help="Largest body.")
@click.option("--rate-per-key", default=20.0, show_default=True, type=click.FloatRange(min=0.01), help="Requests/s.")
@click.option("--burst-per-key", default=100, show_default=True, type=click.IntRange(1), help="Requests at once.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Least severe log lines written (keys are redacted at every level).",
)
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
    allowed_destinations: tuple[str, ...],
    max_body_bytes: int,
    rate_per_key: float,
    burst_per_key: int,
    log_level: str,
    log_format: str,
    **watched: str,
) -> None:
    """Serve the management API until SIGINT or SIGTERM (and the funnel page of the workers at GET /).

    Keys are sealed with COLLECTORS_SECRET_KEY or COLLECTORS_SECRET_KEY_FILE (required; see docs/SECURITY.md).
    """
    from streams.core.allowlist import AllowedDestinations, AllowListError
    from streams.core.logformat import configure
    from streams.core.secrets import SecretError, install_redaction, load_box
    from streams.services.management.api import ALLOW_OPTION
    from streams.services.management.api import serve as serve_api
    from streams.services.management.funnel import Watched
    from streams.services.management.guard import Limits

    install_redaction()
    configure(log_level, "json" if log_format == "json" else "text")
    try:
        box = load_box()
    except SecretError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    allowed = list(allowed_destinations) or os.environ.get("COLLECTORS_ALLOWED_DESTINATIONS", "").split(",")
    allowed = list(dict.fromkeys(url.strip() for url in allowed if url.strip())) or [
        auth_url,
        destination_url or auth_url,
    ]
    try:
        AllowedDestinations(allowed, option=ALLOW_OPTION)
    except AllowListError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    limits = Limits(max_body_bytes=max_body_bytes, requests_per_s=rate_per_key, burst=burst_per_key)

    def ready(url: str) -> None:
        click.echo(
            f"management API listening on {url} (topic {topic} on {broker}, keys checked at {auth_url}, "
            f"destinations allowed: {', '.join(allowed)})"
        )

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
            box=box,
            allowed_destinations=allowed,
            limits=limits,
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
