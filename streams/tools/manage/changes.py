"""What a document would change in an app: for ``apply --dry-run`` and ``diff``.

Items are compared as the API shows them, without their timestamps and last error. Keys are never shown
back by the API, so a collector's key (and a model node's) is compared redacted (its first characters): a
different key with the same first characters is not seen as a change, and is overwritten anyway by ``apply``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from schemas.collectors import Collector
from streams.core.secrets import redact, redacted_document
from streams.services.management.spelling import project_fields

VIEW_ONLY_FIELDS = ("created_at", "modified_at", "last_error")
COLLECTOR_FIELDS = tuple(Collector.model_fields)


@dataclass(frozen=True)
class Change:
    """One item of a document against the app: its outcome and both sides as the API would show them."""

    item_id: str
    outcome: str
    live: dict[str, Any] | None
    wanted: dict[str, Any]

    def diff(self, label: str) -> str:
        """A unified diff of the item's YAML, live (``-``) to wanted (``+``); empty when they are equal."""
        before = [] if self.live is None else as_yaml(self.live).splitlines(keepends=True)
        after = as_yaml(self.wanted).splitlines(keepends=True)
        return "".join(difflib.unified_diff(before, after, f"live/{label}", f"file/{label}"))


def as_yaml(item: dict[str, Any]) -> str:
    """An item as YAML, fields in the API's order."""
    return yaml.safe_dump(item, sort_keys=False, allow_unicode=True)


def shown(item: dict[str, Any]) -> dict[str, Any]:
    """A stored item (a view from the API) as a document gives it: in the project's spelling (``source``,
    ``status: active|paused``), without the fields a document does not set, nor empty ones."""
    if "collector_source" in item or isinstance(item.get("status"), dict):
        item = project_fields(item, str(item.get("id")), "")
    item = {k: v for k, v in item.items() if k not in VIEW_ONLY_FIELDS and v is not None}
    for part in ("source", "destination"):
        if isinstance(item.get(part), dict):
            item[part] = {k: v for k, v in item[part].items() if v is not None and k != "key_env"}
    order = {name: index for index, name in enumerate(COLLECTOR_FIELDS)}
    return dict(sorted(item.items(), key=lambda pair: order.get(pair[0], len(order))))


def _wanted(body: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """A document's item as the API would show it once written."""
    wanted = shown(body)
    if "nodes" in wanted:  # a workflow: its model keys as the API shows them
        shown_workflow: dict[str, Any] = redacted_document({"kind": "workflow", "workflow": wanted})["workflow"]
        return shown_workflow
    destination = wanted.get("destination")
    if isinstance(destination, dict):
        clear = destination.get("key")
        kept = live["destination"].get("key") if live is not None else None
        wanted["destination"] = {**destination, "key": redact(clear) if clear else kept}
    return wanted


def compare(items: Sequence[dict[str, Any]], stored: Sequence[dict[str, Any]], mode: str) -> list[Change]:
    """Each item's change: ``create`` (missing), ``overwrite`` (differs) or ``unchanged``; in ``create`` mode an
    existing item, and in ``overwrite`` (patch) mode a missing one, is one the API would refuse."""
    live_by_id = {item["id"]: shown(item) for item in stored}
    result = []
    for body in items:
        live = live_by_id.get(body["id"])
        wanted = _wanted(body, live)
        if live is None:
            outcome = "missing: patch refuses it" if mode == "overwrite" else "would create"
        elif mode == "create":
            outcome = "exists: create refuses it"
        else:
            outcome = "unchanged" if wanted == live else "would overwrite"
        result.append(Change(body["id"], outcome, live, wanted))
    return result
