"""Prediction events from one PostModelOutputs call: its request and its answer, as JSON documents.

One event per successful output (``schemas/events.py``): the output as the model answered it, with its
``input`` replaced by the input as the caller sent it (the answer may echo it trimmed), a new unique event
id, ``created_at`` from the output (else the time the tap saw the answer), and the caller when known.
An answer whose status is not SUCCESS or MIXED_STATUS gives no event; nor does a failed output.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from streams.services.outputs_api import MIXED_STATUS, SUCCESS


def _code(document: Mapping[str, Any]) -> int | None:
    status = document.get("status")
    code = status.get("code") if isinstance(status, dict) else None
    return code if isinstance(code, int) else None


def succeeded(answer: Any) -> bool:
    """Whether a PostModelOutputs answer is a success (SUCCESS, or MIXED_STATUS: some outputs succeeded)."""
    return isinstance(answer, dict) and _code(answer) in (SUCCESS, MIXED_STATUS)


def _sent_input(sent: Sequence[Any], index: int, answered: Mapping[str, Any]) -> dict[str, Any] | None:
    """The request's input that the ``index``-th output answers: by id when the request gave ids, else by place."""
    answered_id = answered.get("id")
    by_id = next((item for item in sent if isinstance(item, dict) and item.get("id") == answered_id), None)
    chosen = by_id if answered_id and by_id is not None else (sent[index] if index < len(sent) else None)
    if not isinstance(chosen, dict):
        return None
    if answered_id and not chosen.get("id"):
        return {**chosen, "id": answered_id}  # the id the model gave an input sent without one
    return chosen


def _has_model(output: Mapping[str, Any]) -> bool:
    model = output.get("model")
    return isinstance(model, dict) and all(
        isinstance(model.get(f), str) and model[f] for f in ("id", "user_id", "app_id")
    )


def prediction_events(
    request: Any, answer: Any, *, caller_user_id: str | None, seen_at: str
) -> tuple[list[dict[str, Any]], int]:
    """The events of one call, and how many outputs gave none (failed, or without a model or an input)."""
    if not succeeded(answer):
        return [], 0
    outputs = answer.get("outputs")
    if not isinstance(outputs, list):
        return [], 0
    inputs = request.get("inputs") if isinstance(request, dict) else None
    sent: list[Any] = inputs if isinstance(inputs, list) else []
    events: list[dict[str, Any]] = []
    for index, output in enumerate(outputs):
        if not isinstance(output, dict) or _code(output) not in (None, SUCCESS) or not _has_model(output):
            continue
        answered_input = output.get("input")
        answered: dict[str, Any] = answered_input if isinstance(answered_input, dict) else {}
        sent_input = _sent_input(sent, index, answered)
        if sent_input is None:
            continue
        event: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "created_at": output.get("created_at") or seen_at,
            "output": {**output, "input": sent_input},
        }
        if caller_user_id:
            event["caller"] = {"user_id": caller_user_id}
        events.append(event)
    return events, len(outputs) - len(events)
