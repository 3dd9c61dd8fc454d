"""Decode raw prediction-event bytes once, check them against the published contract.

The validator is compiled from the very JSON Schema producers get (``schemas/json``), so the worker
and producers in other languages check the same rules. Pydantic stays out of the per-event path.
"""

from __future__ import annotations

from typing import Any

import fastjsonschema
import orjson

from schemas.export import event_schema

DEFAULT_MAX_EVENT_BYTES = 1_048_576
DEFAULT_MAX_DEPTH = 32

_SCHEMA = event_schema()
_validate = fastjsonschema.compile(_SCHEMA, use_default=False)


class DecodeError(Exception):
    """A record that is not a valid prediction event; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode_event(
    raw: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> dict[str, Any]:
    """Parse and check one event; raise :class:`DecodeError` saying what is wrong."""
    if len(raw) > max_bytes:
        raise DecodeError("too_large", f"event is {len(raw)} bytes, over the limit of {max_bytes}")
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("not_utf8", f"event bytes are not UTF-8 ({exc})") from None
        raise DecodeError("invalid_json", str(exc)) from None
    if not isinstance(event, dict):
        raise DecodeError("contract", f"an event is a JSON object, got {type(event).__name__}")
    if _depth_exceeds(event, max_depth):
        raise DecodeError("too_deep", f"event nests deeper than {max_depth} levels")
    try:
        _validate(event)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise DecodeError("contract", _readable(exc)) from None
    return event


def _readable(exc: fastjsonschema.JsonSchemaValueException) -> str:
    name = exc.name or "data"
    path = name.removeprefix("data").lstrip(".") or "(event)"
    if exc.rule == "anyOf" and isinstance(exc.rule_definition, list):
        alternatives = _required_alternatives(exc.rule_definition)
        if alternatives:
            return f"{path} needs {' or '.join(alternatives)}"
    message = exc.message.removeprefix(name).strip()
    return f"{path} {message}"


def _required_alternatives(options: list[Any]) -> list[str]:
    """For an ``anyOf`` of "has field X" rules (possibly behind a $ref, beside null): the fields named."""
    for option in options:
        if isinstance(option, dict) and "$ref" in option:
            option = _SCHEMA["$defs"].get(option["$ref"].rsplit("/", 1)[-1], {})
        if isinstance(option, dict) and "anyOf" in option:
            return _required_alternatives(option["anyOf"])
    names = [
        " and ".join(f"`{f}`" for f in option.get("required", [])) for option in options if isinstance(option, dict)
    ]
    return names if names and all(names) else []


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False
