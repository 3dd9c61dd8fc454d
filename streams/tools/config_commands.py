"""``collectors config``: set, choose and list contexts (see :mod:`streams.tools.contexts`)."""

from __future__ import annotations

from pathlib import Path

import click

from streams.tools import contexts


@click.group("config")
def config() -> None:
    """Contexts: named defaults (API, key reference, app, broker) that commands use when not given.

    Flags and COLLECTORS_* variables override the context; choose one per command with
    `collectors --context NAME ...` or COLLECTORS_CONTEXT.
    """


@config.command("set-context")
@click.argument("name")
@click.option("--api", help="Management API URL.")
@click.option("--key-env", help="Name of the environment variable holding your API key.")
@click.option(
    "--key-file", type=click.Path(dir_okay=False, path_type=Path), help="File holding your API key (keep it 0600)."
)
@click.option("--user", help="User owning the app managed.")
@click.option("--app", help="App whose collectors are managed.")
@click.option("--broker", help="Kafka bootstrap, kafka://host:port.")
@click.option("--app-id", help="The workers' app id (their consumer group).")
@click.option("--use", is_flag=True, help="Also make it the current context.")
def set_context(name: str, use: bool, key_env: str | None, key_file: Path | None, **settings: str | None) -> None:
    """Create context NAME, or change the settings given (the others are kept).

    Keys are never stored: give --key-env or --key-file, which are read when a command runs.
    """
    if key_env and key_file:
        raise click.UsageError("give --key-env or --key-file, not both")
    document = contexts.load()
    context = dict(document["contexts"].get(name) or {})
    if key_env or key_file:
        context.pop("key_env", None)
        context.pop("key_file", None)
        context["key_env" if key_env else "key_file"] = key_env or str(Path(str(key_file)).expanduser().resolve())
    context.update({field: value for field, value in settings.items() if value is not None})
    document["contexts"][name] = context
    if use or document["current-context"] is None:
        document["current-context"] = name
    path = contexts.save(document)
    current = " (current)" if document["current-context"] == name else ""
    click.echo(f"context {name}{current} set in {path}")


@config.command("use-context")
@click.argument("name")
def use_context(name: str) -> None:
    """Make NAME the current context."""
    document = contexts.load()
    if name not in document["contexts"]:
        known = ", ".join(sorted(document["contexts"])) or "none"
        raise contexts.ContextError(f"no context named {name!r} (known: {known})")
    document["current-context"] = name
    contexts.save(document)
    click.echo(f"switched to context {name}")


@config.command("current-context")
def current_context() -> None:
    """Print the context in use; exit 1 when there is none."""
    name = contexts.active_name()
    if name is None:
        click.echo("no current context; set one with `collectors config set-context NAME ... --use`", err=True)
        raise SystemExit(1)
    click.echo(name)


@config.command("get-contexts")
def get_contexts() -> None:
    """List the contexts; the one in use is marked with *."""
    document = contexts.load()
    if not document["contexts"]:
        click.echo(f"no contexts in {contexts.contexts_file()}")
        return
    in_use = contexts.active_name()
    headers = ["CURRENT", "NAME", *(field.upper().replace("_", "-") for field in contexts.FIELDS)]
    rows = [
        ["*" if name == in_use else "", name, *(str(values.get(field) or "") for field in contexts.FIELDS)]
        for name, values in sorted(document["contexts"].items())
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@config.command("delete-context")
@click.argument("name")
def delete_context(name: str) -> None:
    """Remove context NAME."""
    document = contexts.load()
    if document["contexts"].pop(name, None) is None:
        raise contexts.ContextError(f"no context named {name!r}")
    if document["current-context"] == name:
        document["current-context"] = None
    contexts.save(document)
    click.echo(f"deleted context {name}")
