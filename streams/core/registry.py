"""Compile the control topic's documents (plus any static configuration) into a collector index."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from schemas.collectors import Workflow
from schemas.management import StoredCollector, StoredWorkflow
from streams.core.routing import CompiledCollector, CompiledWorkflows, compile_collector
from streams.core.workflows import WorkflowError


def compile_stored(
    state: Mapping[str, dict[str, Any]],
) -> tuple[list[CompiledCollector], dict[str, str]]:
    """The stored collectors compiled, and an error message for each one that cannot run."""
    workflows: defaultdict[tuple[str, str], dict[str, Workflow]] = defaultdict(dict)
    collectors: list[StoredCollector] = []
    errors: dict[str, str] = {}
    for key, document in state.items():
        try:
            if document.get("kind") == "workflow":
                stored_workflow = StoredWorkflow.model_validate(document)
                workflows[(stored_workflow.user_id, stored_workflow.app_id)][stored_workflow.workflow.id] = (
                    stored_workflow.workflow
                )
            else:
                collectors.append(StoredCollector.model_validate(document))
        except ValidationError as exc:
            errors[key] = f"stored document is invalid: {exc.errors()[0]['msg']}"
    compiled: list[CompiledCollector] = []
    shared: CompiledWorkflows = {}
    for stored in collectors:
        spec = stored.collector
        qualified = f"{stored.user_id}/{stored.app_id}/{spec.id}"
        key = spec.destination.key.get_secret_value() if spec.destination.key is not None else ""
        try:
            collector = compile_collector(spec, workflows[(stored.user_id, stored.app_id)], key, shared=shared)
        except (KeyError, WorkflowError) as exc:
            errors[qualified] = f"cannot run: {exc}"
            continue
        compiled.append(collector.with_error(stored.last_error))
    return compiled, errors
