"""Contexts, in the manner of kubectl: named sets of defaults (API, key reference, app, broker) so that
commands need not repeat them.

They live in ``contexts.yaml`` under the user's configuration directory (``$XDG_CONFIG_HOME/collectors``,
usually ``~/.config/collectors``), readable by its owner only. A context never holds a key in clear: it
names an environment variable (``key_env``) or a file (``key_file``) holding it. The active context is
``--context`` (before the command), else ``$COLLECTORS_CONTEXT``, else the current one; a command's flags
and the ``COLLECTORS_*`` variables override whatever it gives.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from streams.tools.exits import EXIT_USAGE

CONTEXT_ENV = "COLLECTORS_CONTEXT"
FIELDS = ("api", "key_env", "key_file", "user", "app", "broker", "app_id")
"""What a context may set: the management API, the key's reference, the app managed, the Kafka broker and
the workers' app id."""


class ContextError(click.ClickException):
    """A context that cannot be used; the message says what to fix."""

    exit_code = EXIT_USAGE


def contexts_file() -> Path:
    """Where contexts are stored."""
    return Path(click.get_app_dir("collectors")) / "contexts.yaml"


def load() -> dict[str, Any]:
    """The stored contexts: ``{"current-context": NAME | None, "contexts": {NAME: {field: value}}}``."""
    path = contexts_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise ContextError(f"cannot read the contexts in {path}: {exc}") from None
    raw: Any = {}
    if text:  # yaml is imported only then: most commands start without a contexts file
        import yaml

        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ContextError(f"cannot read the contexts in {path}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("contexts", {}), dict):
        raise ContextError(f"{path} is not a contexts file; move it away and set the contexts again")
    return {"current-context": raw.get("current-context"), "contexts": dict(raw.get("contexts") or {})}


def save(document: dict[str, Any]) -> Path:
    """Write the contexts, readable and writable by their owner only (the directory too)."""
    path = contexts_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    import yaml

    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        yaml.safe_dump(document, file, sort_keys=False)
    os.chmod(partial, 0o600)
    partial.replace(path)
    return path


def active_name() -> str | None:
    """The context in use: ``--context``, else ``$COLLECTORS_CONTEXT``, else the current one."""
    click_context = click.get_current_context(silent=True)
    chosen = click_context.find_root().params.get("context") if click_context is not None else None
    name = chosen or os.environ.get(CONTEXT_ENV)
    if name:
        return str(name)
    current = load()["current-context"]
    return str(current) if current else None


def active() -> dict[str, Any]:
    """The settings of the context in use ({} when there is none)."""
    name = active_name()
    if name is None:
        return {}
    contexts = load()["contexts"]
    if name not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise ContextError(
            f"no context named {name!r} (known: {known}); create it with `collectors config set-context`"
        )
    return dict(contexts[name] or {})


def setting(field: str) -> str | None:
    """One setting of the context in use, or None."""
    value = active().get(field)
    return None if value is None else str(value)


def default(field: str, fallback: str) -> Callable[[], str]:
    """A click default: the context's setting, else ``fallback`` (flags and env variables come first)."""
    return lambda: setting(field) or fallback


def key() -> str | None:
    """The API key the context refers to, read from its variable or file; None when it names none."""
    settings = active()
    if settings.get("key_env"):
        name = str(settings["key_env"])
        value = os.environ.get(name)
        if not value:
            raise ContextError(f"the context's key_env {name} is not set; export it, or pass --key")
        return value
    if settings.get("key_file"):
        path = Path(str(settings["key_file"])).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ContextError(f"cannot read the context's key_file {path}: {exc.strerror}") from None
        if not value:
            raise ContextError(f"the context's key_file {path} is empty")
        return value
    return None
