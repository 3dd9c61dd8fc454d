"""Create the worker's topics before Faust subscribes to them, with matching partition counts.

The ledger and operator-state tables are partitioned like the predictions and queue topics, so both topics
must have the same number of partitions; an existing predictions topic sets it.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from streams.kafka.producing import bootstrap_address
from streams.worker.settings import WorkerSettings


class TopicLayoutError(ValueError):
    """Existing topics whose partition counts cannot work together; the message says what to do."""


async def prepare_topics(settings: WorkerSettings) -> int:
    """Create missing topics; return the partition count the worker must use."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_address(settings.broker))
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        await admin.close()
        raise ConnectionError(f"cannot reach Kafka at {bootstrap_address(settings.broker)} ({exc})") from None
    try:
        existing = set(await admin.list_topics())
        counts = await _partition_counts(
            admin, [t for t in (settings.predictions_topic, settings.queue_topic) if t in existing]
        )
        partitions = counts.get(settings.predictions_topic, settings.partitions)
        queue = counts.get(settings.queue_topic, partitions)
        if queue != partitions:
            raise TopicLayoutError(
                f"the queue topic {settings.queue_topic} has {queue} partitions and the predictions topic "
                f"{settings.predictions_topic} has {partitions}: they must match; give the worker another "
                f"COLLECTORS_QUEUE_TOPIC (it is created with {partitions} partitions)"
            )
        wanted = {
            settings.predictions_topic: partitions,
            settings.queue_topic: partitions,
            settings.dead_letter_topic: 1,
        }
        missing = [
            NewTopic(name, num_partitions=n, replication_factor=1) for name, n in wanted.items() if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
        return partitions
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, int]:
    if not topics:
        return {}
    described = await admin.describe_topics(topics)
    return {item["topic"]: len(item["partitions"]) for item in described}
