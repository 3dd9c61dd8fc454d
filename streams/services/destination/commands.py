"""`destination` CLI: serve the reference inputs API and manage its users, apps, keys and inputs."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import orjson

from streams.services.destination import server
from streams.services.destination.backends import open_store
from streams.services.destination.store import (
    KNOWN_SCOPES,
    SCOPE_POST_INPUTS,
    BaseStore,
    KeyRecord,
    StoreError,
    redact_url,
)

DB_ENV = "COLLECTORS_DESTINATION_DB"
DEFAULT_DB = ".collectors/destination.db"

F = TypeVar("F", bound=Callable[..., Any])


def db_option(func: F) -> F:
    """The `--db PATH|URL` option shared by every subcommand."""
    return click.option(
        "--db",
        metavar="PATH|URL",
        default=DEFAULT_DB,
        envvar=DB_ENV,
        show_default=True,
        show_envvar=True,
        help="The destination's database: a SQLite file (created if missing) or a postgresql:// URL"
        " (tables created if missing).",
    )(func)


def scope_option(func: F) -> F:
    """The repeatable `--scope` option of key-creating commands."""
    return click.option(
        "--scope",
        "scopes",
        multiple=True,
        type=click.Choice(sorted(KNOWN_SCOPES)),
        default=[SCOPE_POST_INPUTS],
        show_default=True,
        help="Scope granted to the key; repeat for several.",
    )(func)


@contextmanager
def cli_store(db: str) -> Iterator[BaseStore]:
    """Open the store at `db`, turning store errors into CLI errors that say what to do."""
    try:
        store = open_store(db)
    except StoreError as exc:
        raise click.ClickException(f"{exc} (the database is set by --db or ${DB_ENV})") from exc
    try:
        yield store
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()


def _echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _echo_key(record: KeyRecord, clear_key: str | None, as_json: bool) -> None:
    if as_json:
        _echo_json({**record.to_json(), "key": clear_key} if clear_key else record.to_json())
        return
    where = f"{record.user_id}/{record.app_id}" if record.app_id else f"user {record.user_id} (all apps)"
    click.echo(f"key id: {record.key_id}")
    if clear_key:
        click.echo(f"key:    {clear_key}    (shown once: store it now)")
    click.echo(f"for:    {where}")
    click.echo(f"scopes: {' '.join(sorted(record.scopes))}")


@click.group()
def destination() -> None:
    """Reference destination app: a local inputs API (PostInputs/ListInputs) backed by SQLite or PostgreSQL."""


@destination.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0 = any free port.")
@db_option
@click.option("--faults", is_flag=True, help="Mount POST /_faults to inject outages, errors and delays (tests).")
@click.option(
    "--grpc-port",
    type=click.IntRange(0, 65535),
    help="Also serve PostInputs, ListInputs, GetInput and MyScopes over gRPC (clarifai.api.V2, no TLS) on this port.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="Least severe log lines written (keys are redacted at every level).",
)
def serve(host: str, port: int, db: str, faults: bool, grpc_port: int | None, log_level: str) -> None:
    """Serve the inputs API until SIGINT or SIGTERM."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def ready(url: str) -> None:
        click.echo(f"destination listening on {url} (db {redact_url(db)}{', faults on' if faults else ''})")

    async def main(store: BaseStore) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await server.serve(store, host, port, faults=faults, stop=stop, on_ready=ready, grpc_port=grpc_port)

    with cli_store(db) as store:
        try:
            asyncio.run(main(store))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --host/--port"
            ) from exc
    click.echo("destination stopped")


@destination.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("user_id")
@db_option
def user_create(user_id: str, db: str) -> None:
    """Create user USER_ID."""
    with cli_store(db) as store:
        store.create_user(user_id)
    click.echo(f"created user {user_id}")


@destination.group()
def app() -> None:
    """Manage apps."""


@app.command("create")
@click.argument("user_id")
@click.argument("app_id")
@db_option
def app_create(user_id: str, app_id: str, db: str) -> None:
    """Create app APP_ID of USER_ID (creating the user if missing)."""
    with cli_store(db) as store:
        store.ensure_user(user_id)
        store.create_app(user_id, app_id)
    click.echo(f"created app {user_id}/{app_id}")


@destination.group()
def key() -> None:
    """Manage API keys (stored hashed; a clear key is shown only when created)."""


@key.command("create")
@click.argument("user_id")
@click.option("--app", "app_id", help="Limit the key to this app of USER_ID (default: all the user's apps).")
@scope_option
@click.option("--key", "clear_key", help="Use this key instead of a random one (idempotent if already stored).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
def key_create(
    user_id: str, app_id: str | None, scopes: tuple[str, ...], clear_key: str | None, as_json: bool, db: str
) -> None:
    """Create an API key for USER_ID; prints its id and the clear key once."""
    with cli_store(db) as store:
        key_id, clear = store.create_key(user_id, app_id, scopes, clear_key)
        record = store.get_key_info(key_id)
    assert record is not None
    _echo_key(record, clear, as_json)


@key.command("revoke")
@click.argument("key_id")
@db_option
def key_revoke(key_id: str, db: str) -> None:
    """Revoke the key with id KEY_ID."""
    with cli_store(db) as store:
        store.revoke_key(key_id)
    click.echo(f"revoked key {key_id}")


@key.command("list")
@click.option("--user", "user_id", help="Only this user's keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
def key_list(user_id: str | None, as_json: bool, db: str) -> None:
    """List keys by id (never the keys themselves)."""
    with cli_store(db) as store:
        records = store.list_keys(user_id)
    if as_json:
        _echo_json([record.to_json() for record in records])
        return
    for record in records:
        where = f"{record.user_id}/{record.app_id}" if record.app_id else f"{record.user_id}/*"
        state = "revoked" if record.revoked else "active"
        click.echo(f"{record.key_id}  {where}  {' '.join(sorted(record.scopes))}  {state}")


@destination.command()
@click.argument("user_id")
@click.argument("app_id")
@click.option("--key", "clear_key", required=True, help="The clear key to ensure (e.g. a demo key).")
@scope_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
def bootstrap(user_id: str, app_id: str, clear_key: str, scopes: tuple[str, ...], as_json: bool, db: str) -> None:
    """Ensure USER_ID, APP_ID and a key with the given value exist (idempotent; for demos)."""
    with cli_store(db) as store:
        record = store.bootstrap(user_id, app_id, clear_key, scopes)
    _echo_key(record, None, as_json)


@destination.group()
def inputs() -> None:
    """Read stored inputs."""


@inputs.command("list")
@click.argument("user_id")
@click.argument("app_id")
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1), help="Page, from 1.")
@click.option("--per-page", default=128, show_default=True, type=click.IntRange(1, 1000), help="Inputs per page.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
def inputs_list(user_id: str, app_id: str, page: int, per_page: int, as_json: bool, db: str) -> None:
    """List the inputs of USER_ID/APP_ID in insertion order (reads the database directly)."""
    with cli_store(db) as store:
        if not store.app_exists(user_id, app_id):
            raise click.ClickException(f"app {user_id}/{app_id} does not exist; see `app create` or check --db")
        items = store.list_inputs(user_id, app_id, page, per_page)
        total = store.count_inputs(user_id, app_id)
    if as_json:
        _echo_json({"inputs": [item.to_json() for item in items], "total": total})
        return
    for item in items:
        click.echo(f"{item.input_id}  {item.created_at}  {_summary(item.data)}")
    click.echo(f"{len(items)} shown (page {page}), {total} in {user_id}/{app_id}")


def _summary(data: dict[str, Any]) -> str:
    """A one-line glimpse of an input's data."""
    image, text = data.get("image") or {}, data.get("text") or {}
    if image.get("url"):
        content = f"image {image['url']}"
    elif image.get("base64"):
        content = f"image ({len(image['base64'])} base64 chars)"
    elif text.get("raw"):
        content = f"text {text['raw'][:60]!r}"
    else:
        content = f"text {text.get('url', '')}"
    concepts = ",".join(concept.get("id", "?") for concept in data.get("concepts") or [])
    return f"{content}  concepts={concepts}" if concepts else content
