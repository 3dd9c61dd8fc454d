"""What a running worker holds besides Faust: its collectors (static and from the control topic), its
ledgers, its poster, and what went wrong with each collector."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from schemas.management import collector_key
from streams.core.clock import utc_now
from streams.core.ledger import Ledger
from streams.core.registry import compile_stored
from streams.core.routing import CollectorIndex, CompiledCollector
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

    def apply_control(self, state: dict[str, dict[str, Any]]) -> None:
        """Rebuild the index from the control topic's current documents (called on every change)."""
        self.control_state = dict(state)
        self.rebuild()

    def rebuild(self) -> None:
        stored, errors = compile_stored(self.control_state)
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
            self.control_state[key] = updated
            await self.control_writer.put(key, updated)
        self.rebuild()

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
