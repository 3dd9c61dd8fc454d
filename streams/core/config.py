"""Load a collectors configuration file (YAML or JSON) and resolve each collector's key."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.collectors import Collector, CollectorsDocument
from streams.core.interpolation import InterpolationError, interpolate
from streams.core.routing import CollectorIndex, build_index


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says what to fix."""


def read_document(path: Path, environ: Mapping[str, str] = os.environ) -> CollectorsDocument:
    """Parse a configuration file, replace its ``${NAME}`` / ``${NAME:-default}`` references from
    ``environ`` and validate it."""
    return validate_document(read_raw(path, environ), path)


def read_raw(path: Path, environ: Mapping[str, str] = os.environ) -> Any:
    """A configuration file parsed (YAML or JSON) and interpolated, not yet validated."""
    try:
        return interpolate(read_parsed(path), environ)
    except InterpolationError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def read_parsed(path: Path) -> Any:
    """A configuration file parsed (YAML or JSON), its ``${...}`` references as written."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read collectors configuration {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML/JSON: {exc}") from None


def validate_document(raw: Any, path: Path) -> CollectorsDocument:
    """A parsed document validated; every field error is listed, each with where it is."""
    try:
        return CollectorsDocument.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: invalid collectors configuration"]
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(document)"
            lines.append(f"  {where}: {error['msg']}")
        raise ConfigError("\n".join(lines)) from None


def resolve_key(collector: Collector, environ: Mapping[str, str] = os.environ) -> str:
    """The collector's post-inputs key, given inline or through an environment variable."""
    destination = collector.destination
    if destination.key is not None:
        return destination.key.get_secret_value()
    name = destination.key_env or ""
    value = environ.get(name)
    if not value:
        raise ConfigError(f"collector {collector.id!r}: environment variable {name} (its key_env) is not set")
    return value


def load_index(path: Path, environ: Mapping[str, str] = os.environ) -> CollectorIndex:
    """Read, validate and compile a configuration file; raise :class:`ConfigError` or ``WorkflowError``."""
    document = read_document(path, environ)
    keys = {collector.id: resolve_key(collector, environ) for collector in document.collectors}
    return build_index(document, keys)
