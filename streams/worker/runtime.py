"""What a running worker holds besides Faust: its collectors (static and from the control topic), its
ledgers, its poster, and what went wrong with each collector."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schemas.management import collector_key
from streams.core.allowlist import AllowedDestinations
from streams.core.clock import utc_now
from streams.core.ledger import Ledger
from streams.core.registry import compile_stored
from streams.core.routing import CollectorIndex, CompiledCollector
from streams.core.secrets import SecretBox, seal_document
from streams.delivery.poster import Poster
from streams.kafka.control_topic import ControlWriter
from streams.models.gateway import ModelGateway
from streams.worker.settings import WorkerSettings
from streams.worker.tables import PartitionLedgers

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Runtime:
    settings: WorkerSettings
    poster: Poster
    box: SecretBox
    """Opens the keys of the control topic's collectors (and seals those it writes back)."""
    allowed: AllowedDestinations | None = None
    """The destinations stored collectors may post to (None: any)."""
    static: list[CompiledCollector] = field(default_factory=list)
    index: CollectorIndex = field(default_factory=CollectorIndex)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    last_errors: dict[str, str] = field(default_factory=dict)
    config_errors: dict[str, str] = field(default_factory=dict)
    control_state: dict[str, dict[str, Any]] = field(default_factory=dict)
    error_pauses: dict[str, str] = field(default_factory=dict)
    control_writer: ControlWriter | None = None
    tables: dict[str, Any] = field(default_factory=dict)
    """Faust tables other than the ledgers': ``state``, the memory of stateful operators."""
    ledgers: dict[str, PartitionLedgers] = field(default_factory=dict)
    """The agents' ledgers (``select``, ``post``), each in its Faust table (``ledger-select``, ``ledger-post``)."""
    models: ModelGateway = field(default_factory=ModelGateway)
    """How ``model`` nodes call models: batched, limited per model, retried, cached."""
    posting: dict[str, int] = field(default_factory=dict)
    """The posting agent's gauges: records held for fuller batches, requests in flight."""
    control_changes: int = 0
    """Changes of the control topic applied since the process started."""
    last_posted_at: dict[str, float] = field(default_factory=dict)
    on_dead_letter: Callable[[bytes], None] | None = None
    """Told of every dead letter written (the metrics count them by collector and reason)."""
    """Per collector: when (Unix time) the destination last confirmed one of its inputs."""

    def apply_control(self, state: dict[str, dict[str, Any]]) -> None:
        """Rebuild the index from the control topic's current documents (called on every change)."""
        self.control_state = dict(state)
        self.control_changes += 1
        before = {c.id: c for c in self.index}
        self.rebuild()
        if self.ready.is_set():  # before: the collectors read at start are logged once, when ready
            log_changes(before, {c.id: c for c in self.index})

    def rebuild(self) -> None:
        stored, errors = compile_stored(self.control_state, self.box, self.allowed)
        static = [c.paused(self.error_pauses[c.id]) if c.id in self.error_pauses else c for c in self.static]
        self.index = CollectorIndex([*static, *stored])
        for collector in self.index:
            if collector.active and collector.last_error is None:
                self.last_errors.pop(collector.id, None)  # resumed, or its key fixed: the error is history
        for cid, message in errors.items():
            if self.config_errors.get(cid) != message:
                log.error("collector %s: %s", cid, message)
        self.config_errors = errors

    async def pause_for_error(self, collector: CompiledCollector, reason: str) -> None:
        """Pause a collector whose key the destination refused; stored collectors are paused for every worker."""
        self.last_errors[collector.id] = reason
        destination = collector.spec.destination
        key = collector_key(destination.user_id, destination.app_id, collector.spec.id)
        document = self.control_state.get(key)
        if document is None or self.control_writer is None:
            self.error_pauses[collector.id] = reason
        else:
            updated = {**document, "last_error": reason, "modified_at": utc_now()}
            updated["collector"] = {**document["collector"], "status": "paused"}
            updated = seal_document(updated, self.box)  # a record in clear from an earlier version is sealed now
            self.control_state[key] = updated
            await self.control_writer.put(key, updated)
        self.rebuild()

    def describe(self) -> str:
        """The collectors it runs, for the log: how many, and the ids (the first 20)."""
        ids = sorted(c.id for c in self.index)
        paused = sum(1 for c in self.index if not c.active)
        shown = ", ".join(ids[:20]) + (f", ... ({len(ids) - 20} more)" if len(ids) > 20 else "")
        return f"{len(ids)} collectors ({paused} paused): {shown or 'none'}"

    def totals(self, active: set[tuple[str, int]], *, funnels: bool = True) -> Ledger:
        """The ledgers of the partitions this worker holds as active (of ``(topic, partition)`` pairs), summed
        (without the collectors' funnels unless ``funnels``).

        Standby copies and partitions given away in a rebalance are left out, so the workers' totals add up
        to the group's.
        """
        total = Ledger()
        for stage, topic in (("select", self.settings.predictions_topic), ("post", self.settings.queue_topic)):
            ledgers = self.ledgers[stage]
            for key, value in ledgers.table.items():
                if (topic, int(key.removeprefix("p"))) in active:
                    summary = None if funnels else ledgers.summary(key, value)
                    total.merge_json(value if summary is None else summary, funnels=funnels)
        return total


def log_changes(before: dict[str, CompiledCollector], after: dict[str, CompiledCollector]) -> None:
    """Say which collectors were added, removed, changed, paused or resumed, by id."""
    for cid in sorted(after.keys() - before.keys()):
        log.info("collector %s added (%s)", cid, after[cid].spec.status)
    for cid in sorted(before.keys() - after.keys()):
        log.info("collector %s removed", cid)
    for cid in sorted(before.keys() & after.keys()):
        old, new = before[cid], after[cid]
        if old.active and not new.active:
            log.info("collector %s paused%s", cid, f": {new.last_error}" if new.last_error else "")
        elif new.active and not old.active:
            log.info("collector %s resumed", cid)
        elif old.spec != new.spec or old.key != new.key:
            log.info("collector %s changed", cid)
