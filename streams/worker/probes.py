"""The worker's probes and metrics: ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics``
(Prometheus); and the log lines that say which partitions it holds."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import faust
from faust.web import Request, Response, View

from streams.kafka.probe import BrokerProbe
from streams.worker.metrics import CONTENT_TYPE, WorkerMetrics
from streams.worker.runtime import Runtime

log = logging.getLogger(__name__)


def register_probes(app: faust.App, runtime: Runtime, metrics: WorkerMetrics) -> None:
    """Mount ``/healthz``, ``/readyz`` and ``/metrics``; log partition assignments."""
    broker = BrokerProbe(runtime.settings.broker)
    watched = (runtime.settings.predictions_topic, runtime.settings.queue_topic)

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            """200 while the process and its event loop answer."""
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            """200 when the worker does its work: 503 with the checks that fail otherwise."""
            checks = {
                "control_topic_read": runtime.ready.is_set(),
                "partitions_assigned": not app.rebalancing and _recovered_once(app),
                "tables_recovered": not app.in_recovery,
                "kafka": await broker.answers(),
            }
            ready = all(checks.values())
            return self.json({"ready": ready, "checks": checks}, status=200 if ready else 503)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def assigned(app: faust.App, assigned: Iterable[Any], **kwargs: object) -> None:
        log.info("partitions assigned: %s", _by_topic(assigned, watched) or "none")

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def revoked(app: faust.App, revoked: Iterable[Any], **kwargs: object) -> None:
        held = _by_topic(revoked, watched)
        if held:  # the first join revokes nothing
            log.info("partitions revoked: %s", held)


def _recovered_once(app: faust.App) -> bool:
    """Whether the tables' first recovery (after the first assignment) has finished."""
    return bool(app.tables.recovery.completed.is_set())  # type: ignore[attr-defined]


def _by_topic(partitions: Iterable[Any], topics: tuple[str, ...]) -> str:
    """``predictions [0, 1]; collectors-queue [0, 1]``: the agents' topics only (not the changelogs)."""
    grouped: defaultdict[str, list[int]] = defaultdict(list)
    for tp in partitions:
        if tp.topic in topics:
            grouped[tp.topic].append(tp.partition)
    return "; ".join(f"{topic} {sorted(grouped[topic])}" for topic in topics if topic in grouped)
