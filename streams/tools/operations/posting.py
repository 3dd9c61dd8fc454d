"""Post inputs for a collector with the worker's :class:`Poster`, turning what cannot go on into exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streams.core.routing import CompiledCollector
from streams.core.secrets import redact
from streams.delivery.poster import (
    AuthFailure,
    BatchOutcome,
    PermanentRequestFailure,
    Poster,
    RetryPolicy,
    TransientFailure,
)
from streams.tools.operations.errors import Refused, Unreachable

RETRY = RetryPolicy(initial_s=0.2, max_s=5.0, max_attempts=8)
"""An operation gives up after a few retries (about half a minute) instead of waiting forever like a worker."""


@dataclass(slots=True)
class Tally:
    """What the destination did with the inputs posted so far."""

    posted: int = 0
    duplicates: int = 0
    failed: int = 0

    def add(self, outcome: BatchOutcome) -> None:
        self.posted += len(outcome.delivered)
        self.duplicates += len(outcome.duplicates)
        self.failed += len(outcome.failed)

    def __str__(self) -> str:
        return f"posted {self.posted}, duplicates {self.duplicates}, failed {self.failed}"


async def post_batch(poster: Poster, collector: CompiledCollector, inputs: Sequence[dict[str, Any]]) -> BatchOutcome:
    """Post up to 128 inputs to the collector's destination with its current key.

    A request refused as a whole (HTTP 400/404) counts each input as failed; a refused key raises
    :class:`Refused`, a destination that keeps failing :class:`Unreachable` (both safe to run again).
    """
    destination = collector.spec.destination
    try:
        return await poster.post_inputs(
            destination.base_url, destination.user_id, destination.app_id, collector.key, inputs
        )
    except AuthFailure as exc:
        raise Refused(
            f"the destination refused the key {redact(collector.key)} of {collector.id}: {exc.code} "
            f"{exc.description}. Give the collector a key with the PostInputs scope, then run this again"
        ) from None
    except PermanentRequestFailure as exc:
        return BatchOutcome(failed=[(item["id"], exc.code, exc.description) for item in inputs])
    except TransientFailure as exc:
        raise Unreachable(
            f"the destination {destination.base_url} keeps failing ({exc}); run this again once it answers "
            "(inputs already posted are answered as duplicates)"
        ) from None
