"""Decode raw prediction-event bytes once, check them against the contract.

The checks are the published JSON Schema's (``schemas/json``), run by msgspec Structs (``schemas/structs``)
plus the "one of" rules a Struct cannot state; the event itself is parsed by orjson into plain dicts, with
unknown fields kept. Pydantic stays out of the per-event path.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from schemas.structs import PredictionEvent

DEFAULT_MAX_EVENT_BYTES = 1_048_576
DEFAULT_MAX_DEPTH = 32

_check = msgspec.json.Decoder(PredictionEvent).decode


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
    try:
        checked = _check(raw)
    except msgspec.ValidationError as exc:
        raise DecodeError("contract", _readable(str(exc))) from None
    _check_alternatives(checked)
    # The input's data (metadata above all) is free-form and travels on to the destination: bound its depth.
    if _depth_exceeds(event["output"]["input"]["data"], max_depth - 3):
        raise DecodeError("too_deep", f"output.input.data nests deeper than {max_depth} levels from the event")
    return event


def _readable(message: str) -> str:
    """msgspec's "Expected ... - at `$.output.model`" as "output.model: Expected ..."."""
    text, _, where = message.rpartition(" - at `")
    if not text:
        return message
    path = where.rstrip("`").removeprefix("$").lstrip(".") or "(event)"
    return f"{path}: {text}"


def _check_alternatives(event: PredictionEvent) -> None:
    """The contract's "one of" rules: an input has an image or a text, each given by one of its forms."""
    data = event.output.input.data
    if data.image is None and data.text is None:
        raise DecodeError("contract", "output.input.data needs `image` or `text`")
    if data.image is not None and data.image.url is None and data.image.base64 is None:
        raise DecodeError("contract", "output.input.data.image needs `url` or `base64`")
    if data.text is not None and data.text.raw is None and data.text.url is None:
        raise DecodeError("contract", "output.input.data.text needs `raw` or `url`")


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
