"""The Faust app: topics, ledger tables, agents and views, built from :class:`WorkerSettings`."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import faust

from streams.core.allowlist import AllowedDestinations
from streams.core.routing import CompiledCollector
from streams.core.secrets import SecretBox
from streams.delivery.poster import Poster, RetryPolicy
from streams.kafka.control_topic import ControlReader, ControlWriter
from streams.kafka.copies import QueueSources
from streams.worker.agents import register_agents
from streams.worker.faust_consumer import App
from streams.worker.faust_tuning import THROUGHPUT_SETTINGS, QuietMonitor, RawSchema, tune_gc
from streams.worker.membership import CHANGELOG_CONFIG, group_settings
from streams.worker.metrics import WorkerMetrics
from streams.worker.probes import register_probes
from streams.worker.runtime import Runtime
from streams.worker.settings import WorkerSettings
from streams.worker.tables import PartitionLedgers
from streams.worker.views import register_views
from streams.worker.watchdog import LoopWatchdog

log = logging.getLogger(__name__)


def create_app(
    settings: WorkerSettings, box: SecretBox, static: Sequence[CompiledCollector] = ()
) -> tuple[faust.App, Runtime]:
    """A configured Faust app and the runtime its agents share.

    Collectors come from the control topic (managed through the API; their keys opened with ``box``) and from
    ``static``, a configuration file's collectors. The agents start once the control topic has been read to
    its end.
    """
    app = App(
        settings.app_id,
        broker=settings.broker,
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        Monitor=QuietMonitor,
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        stream_processing_timeout=settings.stream_processing_timeout_s,
        **group_settings(
            worker_id=settings.worker_id,
            session_timeout_s=settings.session_timeout_s,
            heartbeat_interval_s=settings.heartbeat_interval_s,
        ),
        **THROUGHPUT_SETTINGS,
    )
    app.fetch_max_wait_ms = settings.fetch_max_wait_ms
    app.leave_group_on_stop = settings.leave_group_on_stop
    app.loop_stall_warn_s = settings.loop_stall_warn_s
    runtime = Runtime(
        settings=settings,
        poster=Poster(timeout_s=settings.http_timeout_s, retry=RetryPolicy(max_s=settings.retry_max_backoff_s)),
        box=box,
        allowed=allowed_destinations(settings),
        static=list(static),
    )
    runtime.rebuild()
    topics = {
        # internal=True: Faust creates the topic at start-up when it does not exist yet.
        "predictions": app.topic(
            settings.predictions_topic, partitions=settings.partitions, internal=True, schema=RawSchema()
        ),
        "queue": app.topic(settings.queue_topic, partitions=settings.partitions, internal=True, schema=RawSchema()),
        "dead_letters": app.topic(settings.dead_letter_topic, partitions=1, internal=True),
    }
    # Key and value types unset: Faust's JSON (ledgers are written as the JSON bytes of Ledger.to_bytes).
    for stage in ("select", "post"):
        table = app.Table(
            f"ledger-{stage}", default=None, partitions=settings.partitions, extra_topic_configs=CHANGELOG_CONFIG
        )
        queue = QueueSources(settings.broker, settings.queue_topic) if stage == "select" else None
        runtime.ledgers[stage] = PartitionLedgers(table, queue=queue)  # type: ignore[arg-type]  # a Table
    runtime.tables["state"] = app.Table(
        "operator-state", default=None, partitions=settings.partitions, extra_topic_configs=CHANGELOG_CONFIG
    )
    register_agents(app, runtime, topics)
    register_views(app, runtime)
    register_probes(app, runtime, WorkerMetrics(runtime, app))
    control = ControlReader(settings.broker, settings.control_topic, on_change=runtime.apply_control)
    writer = ControlWriter(settings.broker, settings.control_topic)

    if settings.loop_stall_warn_s > 0:
        watchdog = LoopWatchdog(settings.loop_stall_warn_s)

        @app.task(on_leader=False)  # type: ignore[untyped-decorator]
        async def watch_loop() -> None:
            """Log every stall of the event loop longer than ``loop_stall_warn_s``, with its stack."""
            watchdog.start()

    @app.task(on_leader=False)  # type: ignore[untyped-decorator]
    async def start_control() -> None:
        """Read the managed collectors whole before the agents start, and keep reading them."""
        await topics["dead_letters"].maybe_declare()
        await control.start()
        await control.ready.wait()
        await writer.start()
        runtime.control_writer = writer
        tune_gc(settings.gc_young_threshold)
        runtime.ready.set()
        log.info("worker %s started with %s", settings.app_id, runtime.describe())

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_connections(app: faust.App, **kwargs: object) -> None:
        """Close the control reader and writer and the destinations' connection pools."""
        log.info("worker %s stopping", settings.app_id)
        await control.stop()
        if runtime.control_writer is not None:
            await writer.stop()
        await runtime.poster.close()
        await runtime.models.close()

    return app, runtime


def allowed_destinations(settings: WorkerSettings) -> AllowedDestinations | None:
    """The worker's allow-list of destinations, None when it is not set (any destination)."""
    if not settings.allowed_destinations.strip():
        return None
    option = "COLLECTORS_ALLOWED_DESTINATIONS (or `collectors worker --allowed-destination URL`) on every worker"
    return AllowedDestinations.parse(settings.allowed_destinations, option=option)
