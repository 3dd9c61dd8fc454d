"""Input ids derived from (collector id, event id): redelivery posts the same id, so it cannot duplicate."""

from __future__ import annotations

from hashlib import blake2b


def input_id(collector_id: str, event_id: str) -> str:
    """A 32-hex-digit id, the same for the same collector and event on every worker and every retry."""
    return blake2b(f"{collector_id}\x00{event_id}".encode(), digest_size=16, person=b"collectors-in").hexdigest()
