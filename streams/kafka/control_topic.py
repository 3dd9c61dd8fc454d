"""Read and write the compacted control topic with aiokafka.

The topic has one partition, so every reader sees every change in the order it was made; compaction keeps
the last record of each key, so reading it from the start rebuilds the current state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.kafka.producing import bootstrap_address, ensure_topic

log = logging.getLogger(__name__)

TOPIC_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "3600000"}


async def ensure_control_topic(bootstrap: str, topic: str) -> None:
    """Create the compacted, single-partition control topic unless it exists."""
    await ensure_topic(bootstrap, topic, 1, TOPIC_CONFIG)


class ControlWriter:
    """Writes control records; each write is acknowledged by the broker before it returns."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        await ensure_control_topic(self._bootstrap, self.topic)
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap_address(self._bootstrap), acks="all")
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def put(self, key: str, value: dict[str, Any] | None) -> None:
        """Store ``value`` under ``key``; None deletes it (a tombstone)."""
        if self._producer is None:
            raise RuntimeError("ControlWriter.start() first")
        payload = None if value is None else orjson.dumps(value)
        await self._producer.send_and_wait(self.topic, payload, key=key.encode())


class ControlReader:
    """Keeps an up-to-date copy of the control topic: ``state`` maps each live key to its document.

    ``ready`` is set once everything written before :meth:`start` has been read; ``on_change`` is called
    after each batch of changes (from the reader's task).
    """

    def __init__(
        self, bootstrap: str, topic: str, *, on_change: Callable[[dict[str, dict[str, Any]]], None] | None = None
    ) -> None:
        self.topic = topic
        self.state: dict[str, dict[str, Any]] = {}
        self.ready = asyncio.Event()
        self._bootstrap = bootstrap
        self._on_change = on_change
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await ensure_control_topic(self._bootstrap, self.topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_address(self._bootstrap), enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        partition = TopicPartition(self.topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(partition, end), name=f"control-reader:{self.topic}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self, partition: TopicPartition, end: int) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(partition, timeout_ms=500, max_records=10_000)
            records = batches.get(partition, [])
            for record in records:
                key = (record.key or b"").decode()
                if record.value is None:
                    self.state.pop(key, None)
                else:
                    try:
                        self.state[key] = orjson.loads(record.value)
                    except orjson.JSONDecodeError:
                        log.error("control record %s at offset %d is not JSON; ignored", key, record.offset)
            position = await self._consumer.position(partition)
            if position >= end and (records or not self.ready.is_set()):
                self._changed()
                self.ready.set()

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change(self.state)
            except Exception:  # a bad document must not stop the reader; the callback reports it
                log.exception("applying control changes failed")
