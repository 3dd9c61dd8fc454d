"""Reading the original input (``event.output.input.data``), shared by the post-queue operators."""

from __future__ import annotations

from typing import Any

from streams.core.operators.base import Candidate


def input_data(candidate: Candidate) -> dict[str, Any]:
    """The input's data, or an empty dict when the event does not have one."""
    value: Any = candidate.event
    for key in ("output", "input", "data"):
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def raw_text(data: dict[str, Any]) -> str | None:
    """The input's inline text (``text.raw``), None when there is none (an image, or a text given by url)."""
    text = data.get("text")
    raw = text.get("raw") if isinstance(text, dict) else None
    return raw if isinstance(raw, str) else None
