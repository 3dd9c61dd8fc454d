"""Every problem of a configuration file at once, without a network or a broker: what ``collectors validate``
reports. Loading a file for a worker stops at the first problem; this goes on."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from schemas.collectors import Collector, Workflow
from streams.core.config import ConfigError, read_parsed
from streams.core.interpolation import interpolate_all
from streams.core.operators.base import Stage
from streams.core.workflows import WorkflowError, compile_nodes

REFERENCES: tuple[tuple[str, Stage], ...] = (("pre_queue_workflow_id", "pre"), ("post_queue_workflow_id", "post"))


def problems(path: Path, environ: Mapping[str, str] = os.environ) -> tuple[list[str], list[str]]:
    """The file's errors and its warnings (what this environment lacks to run it), each naming where."""
    try:
        raw, errors = interpolate_all(read_parsed(path), environ)
    except ConfigError as exc:
        return [str(exc)], []
    if not isinstance(raw, dict):
        return [f"{path}: a collectors document is a mapping with `collectors` and `workflows`"], []
    unresolved = {problem.split(": ", 1)[0] for problem in errors}  # not reported again as invalid values
    errors += [
        f"{key}: unknown field (a document has `collectors` and `workflows`)"
        for key in raw
        if key not in ("collectors", "workflows")
    ]
    workflows = _valid(Workflow, raw.get("workflows"), "workflows", errors, unresolved)
    keyless = _give_keyless_a_stand_in(raw.get("collectors"))
    collectors = _valid(Collector, raw.get("collectors"), "collectors", errors, unresolved)
    errors += _duplicates("workflow", [w.id for w in workflows]) + _duplicates("collector", [c.id for c in collectors])
    by_id = {w.id: w for w in workflows}
    compiled: dict[tuple[str, Stage], str | None] = {}
    warnings = []
    for collector in collectors:
        for field, stage in REFERENCES:
            workflow_id = getattr(collector, field)
            if workflow_id is None:
                continue
            if workflow_id not in by_id:
                errors.append(f"collector {collector.id!r}: {field} {workflow_id!r} is not a workflow of this document")
                continue
            if (workflow_id, stage) not in compiled:
                compiled[(workflow_id, stage)] = _compile(by_id[workflow_id], stage, collector.id)
            problem = compiled[(workflow_id, stage)]
            if problem is not None:
                errors.append(problem)
        name = collector.destination.key_env
        if collector.id in keyless:
            warnings.append(
                f"collector {collector.id!r}: no key: apply keeps the one stored with it, a worker cannot run it"
            )
        elif name is not None and not environ.get(name):
            warnings.append(f"collector {collector.id!r}: key_env {name} is not set here (apply and workers need it)")
    return list(dict.fromkeys(f"{path}: {e}" for e in errors)), warnings


def _give_keyless_a_stand_in(items: Any) -> set[str]:
    """Give each collector whose destination has neither ``key`` nor ``key_env`` (as ``collectors get -o yaml``
    writes it, for ``apply`` to keep the stored key) a stand-in key; return their ids."""
    keyless = set()
    for item in items if isinstance(items, list) else []:
        destination = item.get("destination") if isinstance(item, dict) else None
        if isinstance(destination, dict) and destination.get("key") is None and destination.get("key_env") is None:
            destination["key"] = "stored"
            keyless.add(str(item.get("id")))
    return keyless


def _valid(model: type[BaseModel], items: Any, where: str, errors: list[str], unresolved: set[str]) -> list[Any]:
    """The items that validate; the others' field errors appended to ``errors`` (but for the fields whose
    value still holds a reference to an unset variable)."""
    if items is None:
        return []
    if not isinstance(items, list):
        errors.append(f"{where}: must be a list")
        return []
    valid = []
    for index, item in enumerate(items):
        try:
            valid.append(model.model_validate(item))
        except ValidationError as exc:
            name = f" ({item['id']!r})" if isinstance(item, dict) and isinstance(item.get("id"), str) else ""
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"])
                if f"{where}[{index}].{field}" in unresolved:
                    continue
                errors.append(f"{where}[{index}]{name}{'.' + field if field else ''}: {error['msg']}")
    return valid


def _duplicates(kind: str, ids: list[str]) -> list[str]:
    return [f"{kind} id {item!r} appears {ids.count(item)} times" for item in dict.fromkeys(ids) if ids.count(item) > 1]


def _compile(workflow: Workflow, stage: Stage, collector_id: str) -> str | None:
    try:
        compile_nodes(workflow.nodes, stage=stage, collector_id=collector_id, workflow_id=workflow.id)
    except WorkflowError as exc:
        return str(exc)
    return None
