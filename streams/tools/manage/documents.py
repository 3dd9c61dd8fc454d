"""A collectors document as the management API takes it, app by app.

The API accepts only self-contained items: a ``key_env`` is read from this environment and sent as the
key; a ``concept_map`` graph file is read here and sent as its relations (a relative path is found from
the current directory, as a worker would, or else from the document's folder or one above it). A
collector whose destination gives neither ``key`` nor ``key_env`` (as ``collectors get -o yaml`` writes
it) keeps the key stored with it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.collectors import Collector
from streams.core.config import ConfigError, read_raw, resolve_key, validate_document
from streams.core.operators.concept_map import load_graph
from streams.core.secrets import KEY_REDACTION

KEEP_STORED_KEY = "COLLECTORS_KEEP_STORED_KEY"
"""Stands in, while the document is validated, for the key of a collector given without one."""


class DocumentError(ValueError):
    """A document that cannot be sent; the message says what to fix."""


@dataclass
class AppItems:
    """What a document holds for one app."""

    workflows: list[dict[str, Any]] = field(default_factory=list)
    collectors: list[dict[str, Any]] = field(default_factory=list)


def by_app(path: Path, user_id: str | None, app_id: str | None) -> dict[tuple[str, str], AppItems]:
    """The document's items by target app: a collector's is its destination's; a workflow goes to
    --user/--app when given, else to the apps of the collectors that use it."""
    try:
        raw = read_raw(path)
        _mark_keyless(raw)
        document = validate_document(raw, path)
    except ConfigError as exc:
        raise DocumentError(str(exc)) from None
    apps: defaultdict[tuple[str, str], AppItems] = defaultdict(AppItems)
    users_of: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
    for collector in document.collectors:
        target = (collector.destination.user_id, collector.destination.app_id)
        apps[target].collectors.append(collector_body(collector))
        for workflow_id in (collector.pre_queue_workflow_id, collector.post_queue_workflow_id):
            if workflow_id is not None:
                users_of[workflow_id].add(target)
    for workflow in document.workflows:
        targets = {(user_id, app_id)} if user_id and app_id else users_of.get(workflow.id)
        if not targets:
            raise DocumentError(
                f"workflow {workflow.id!r} is used by no collector of {path}: pass --user and --app to say its app"
            )
        body = workflow.model_dump(mode="json")
        body["nodes"] = inline_graphs(body["nodes"], path)
        for target in sorted(targets):
            apps[target].workflows.append(body)
    return dict(apps)


def collector_body(collector: Collector) -> dict[str, Any]:
    """A collector as the API takes it: its key resolved, or left out to keep the stored one."""
    body = collector.model_dump(mode="json", exclude={"destination": {"key_env"}})
    if collector.destination.key_env == KEEP_STORED_KEY:
        body["destination"].pop("key", None)
        return body
    try:
        body["destination"]["key"] = key = resolve_key(collector)
    except ConfigError as exc:
        raise DocumentError(f"{exc}: set it, or give destination.key in the file") from None
    KEY_REDACTION.remember(key)
    return body


def inline_graphs(nodes: list[dict[str, Any]], document: Path) -> list[dict[str, Any]]:
    """``nodes`` with every ``concept_map`` graph path replaced by the file's relations."""
    inlined = []
    for node in nodes:
        if node.get("operator") == "concept_map" and isinstance(node.get("graph"), str):
            path = _find(node["graph"], document)
            try:
                relations = load_graph(str(path))
            except OSError as exc:
                raise DocumentError(f"cannot read the knowledge graph {path}: {exc.strerror}") from None
            except ValueError as exc:
                raise DocumentError(str(exc)) from None
            node = {**node, "graph": [relation.model_dump(mode="json") for relation in relations]}
        elif node.get("operator") == "any" and isinstance(node.get("nodes"), list):
            node = {**node, "nodes": inline_graphs(node["nodes"], document)}
        inlined.append(node)
    return inlined


def _find(graph: str, document: Path) -> Path:
    """A relative path from the current directory, else from the document's folder or one above it."""
    path = Path(graph)
    if path.is_absolute() or path.exists():
        return path
    return next((p / path for p in document.resolve().parents if (p / path).exists()), path)


def _mark_keyless(raw: Any) -> None:
    """Give each collector whose destination has neither ``key`` nor ``key_env`` the stand-in key_env."""
    collectors = raw.get("collectors") if isinstance(raw, dict) else None
    for collector in collectors if isinstance(collectors, list) else []:
        destination = collector.get("destination") if isinstance(collector, dict) else None
        if isinstance(destination, dict) and destination.get("key") is None and destination.get("key_env") is None:
            destination["key_env"] = KEEP_STORED_KEY
