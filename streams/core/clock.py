"""Timestamps as every record and response of Collectors writes them."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    """Now, in RFC 3339 with milliseconds and a ``Z``: ``2026-11-27T10:00:00.000Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
