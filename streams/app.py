"""The Faust app: topics, agents and views, built from :class:`WorkerSettings` and a collector index."""

from __future__ import annotations

import faust

from streams.agents import register_agents
from streams.delivery.poster import Poster, RetryPolicy
from streams.routing import CollectorIndex
from streams.runtime import Runtime
from streams.settings import WorkerSettings
from streams.views import register_views


def create_app(settings: WorkerSettings, index: CollectorIndex) -> tuple[faust.App, Runtime]:
    """A configured Faust app and the runtime its agents share."""
    app = faust.App(
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
        web_port=settings.web_port,
        web_in_thread=False,
        producer_acks=-1,
    )
    runtime = Runtime(
        settings=settings,
        index=index,
        poster=Poster(timeout_s=settings.http_timeout_s, retry=RetryPolicy(max_s=settings.retry_max_backoff_s)),
    )
    topics = {
        # internal=True: Faust creates the topic at start-up when it does not exist yet.
        "predictions": app.topic(settings.predictions_topic, partitions=settings.partitions, internal=True),
        "queue": app.topic(settings.queue_topic, partitions=settings.partitions, internal=True),
        "dead_letters": app.topic(settings.dead_letter_topic, partitions=1, internal=True),
    }
    register_agents(app, runtime, topics)
    register_views(app, runtime)

    @app.task(on_leader=False)  # type: ignore[untyped-decorator]
    async def declare_dead_letter_topic() -> None:
        """Create the dead-letter topic up front, so kcat and `collectors dlq` find it before the first failure."""
        await topics["dead_letters"].maybe_declare()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_poster(app: faust.App, **kwargs: object) -> None:
        """Close the destinations' connection pools once the consumer stopped."""
        await runtime.poster.close()

    return app, runtime
