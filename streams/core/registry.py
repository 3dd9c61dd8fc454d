"""Compile the control topic's documents (plus any static configuration) into a collector index."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from schemas.collectors import Workflow
from schemas.management import StoredCollector, StoredWorkflow
from streams.core.allowlist import AllowedDestinations
from streams.core.routing import CompiledCollector, CompiledWorkflows, compile_collector
from streams.core.secrets import SecretBox, key_holders, opened_or_keyless
from streams.core.workflows import WorkflowError


def compile_stored(
    state: Mapping[str, dict[str, Any]], box: SecretBox, allowed: AllowedDestinations | None = None
) -> tuple[list[CompiledCollector], dict[str, str]]:
    """The stored collectors compiled, and an error message for each one that cannot run.

    Keys are opened with ``box``. A workflow whose model key no secret opens, or whose model is not ``allowed``,
    is left out: the collectors using it cannot run, and say why. A collector whose key no secret opens, or
    whose destination is not ``allowed`` (None: any), is blocked with that reason as its last error: it still
    selects, posts nothing, and what it queues waits in the dead-letter topic, replayable, as for a revoked key.
    """
    workflows: defaultdict[tuple[str, str], dict[str, Workflow]] = defaultdict(dict)
    collectors: list[tuple[StoredCollector, str | None]] = []
    errors: dict[str, str] = {}
    for key, document in state.items():
        try:
            if document.get("kind") == "workflow":
                opened, problem = opened_or_keyless(document, box)
                problem = problem or _model_not_allowed(opened, allowed)
                if problem is not None:  # its collectors cannot run without it: each says so
                    errors[key] = f"workflow {key}: {problem}"
                    continue
                stored_workflow = StoredWorkflow.model_validate(opened)
                workflows[(stored_workflow.user_id, stored_workflow.app_id)][stored_workflow.workflow.id] = (
                    stored_workflow.workflow
                )
            else:
                collectors.append(_open_collector(document, box))
        except ValidationError as exc:
            errors[key] = f"stored document is invalid: {exc.errors()[0]['msg']}"
    compiled: list[CompiledCollector] = []
    shared: CompiledWorkflows = {}
    for stored, sealed_problem in collectors:
        spec = stored.collector
        qualified = f"{stored.user_id}/{stored.app_id}/{spec.id}"
        key = spec.destination.key.get_secret_value() if spec.destination.key is not None else ""
        try:
            collector = compile_collector(spec, workflows[(stored.user_id, stored.app_id)], key, shared=shared)
        except (KeyError, WorkflowError) as exc:
            errors[qualified] = f"cannot run: {exc}"
            continue
        problem = sealed_problem or (allowed.problem(spec.destination.base_url) if allowed is not None else None)
        compiled.append(collector.with_error(stored.last_error) if problem is None else collector.blocked_by(problem))
    return compiled, errors


def _model_not_allowed(document: dict[str, Any], allowed: AllowedDestinations | None) -> str | None:
    """Why a workflow's model nodes may not be called (a URL off the allow-list), or None."""
    if allowed is None:
        return None
    for node in key_holders(document):
        url = node.get("url")
        problem = allowed.problem(url if "://" in url else f"http://{url}") if isinstance(url, str) else None
        if problem is not None:
            return f"cannot call its model: {problem.replace('destination', 'model', 1)}"
    return None


def _open_collector(document: dict[str, Any], box: SecretBox) -> tuple[StoredCollector, str | None]:
    """A stored collector with its key opened; or, when no secret opens it, keyless and why."""
    opened, problem = opened_or_keyless(document, box)
    return StoredCollector.model_validate(opened), problem
