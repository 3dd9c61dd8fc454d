"""Publish records to Kafka from a bounded in-memory queue, in batches, without ever making the offerer wait.

:meth:`BoundedPublisher.offer` appends a record and returns at once. A background task sends what is queued
in batches (what arrived within ``linger_ms``, up to ``batch_records``) and waits for the broker's
acknowledgements; a batch that fails (Kafka down, topic missing) goes back to the head of the queue and is
tried again after a pause (1 s, doubling up to 10 s while the failures go on). Past the bound
(``max_records`` records or ``max_bytes`` bytes of values queued) new records are dropped and counted, and a
warning says how many, at most every ``warn_every_s``. A record may be sent twice when an acknowledgement is
lost: consumers key their work on the record's id, as the collectors do.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams.kafka.producing import bootstrap_address

log = logging.getLogger(__name__)


@dataclass
class PublisherStats:
    """What the publisher did since it started."""

    offered: int = 0
    published: int = 0
    dropped: int = 0
    failed_batches: int = 0
    queued: int = 0
    queued_bytes: int = 0
    last_error: str = ""

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class BoundedPublisher:
    """A bounded queue of (key, value) records for one topic, published by a background task."""

    bootstrap: str
    topic: str
    max_records: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    batch_records: int = 500
    linger_ms: int = 50
    request_timeout_ms: int = 10_000
    retry_pause_s: float = 1.0
    """The pause after a failed batch, doubled after each failure in a row up to ``max_retry_pause_s``."""
    max_retry_pause_s: float = 10.0
    warn_every_s: float = 10.0
    stats: PublisherStats = field(default_factory=PublisherStats)
    _queue: deque[tuple[bytes | None, bytes]] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _producer: AIOKafkaProducer | None = None
    _dropped_since_warning: int = 0
    _last_warning: float = 0.0

    def offer(self, key: bytes | None, value: bytes) -> bool:
        """Queue one record (never waits); False when it was dropped because the queue is full."""
        self.stats.offered += 1
        if self.stats.queued >= self.max_records or self.stats.queued_bytes + len(value) > self.max_bytes:
            self.drop(1)
            return False
        self._queue.append((key, value))
        self.stats.queued += 1
        self.stats.queued_bytes += len(value)
        self._ready.set()
        return True

    def start(self) -> None:
        """Start the background publishing task (in the running event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"publish to {self.topic}")

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Publish what is queued for up to ``flush_timeout_s``; what is left then is dropped and counted."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush_timeout_s):
                    while self.stats.queued and not self._task.done():
                        await asyncio.sleep(0.02)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._warn_dropped(force=True)
        if self.stats.queued:
            left = self.stats.queued
            self._queue.clear()
            self.stats.queued = self.stats.queued_bytes = 0
            self.stats.dropped += left
            log.warning(
                "%d records for %s were not published before the stop (Kafka: %s); %d dropped in all",
                left,
                self.topic,
                self.stats.last_error or "slow",
                self.stats.dropped,
            )
        if self._producer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await self._producer.stop()
            self._producer = None

    def drop(self, count: int) -> None:
        """Count ``count`` records as dropped (they never reach the queue), and warn now and then."""
        self.stats.dropped += count
        self._dropped_since_warning += count
        self._warn_dropped()

    def _warn_dropped(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._dropped_since_warning and (force or now - self._last_warning >= self.warn_every_s):
            log.warning(
                "dropped %d records for %s (queue full at %d records / %d bytes; Kafka: %s); %d dropped in all",
                self._dropped_since_warning,
                self.topic,
                self.max_records,
                self.max_bytes,
                self.stats.last_error or "slow",
                self.stats.dropped,
            )
            self._dropped_since_warning = 0
            self._last_warning = now

    async def _connected(self) -> AIOKafkaProducer:
        """The producer, started now if it is not yet (raises ``KafkaError`` or ``OSError`` when Kafka is down)."""
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap_address(self.bootstrap),
                acks="all",
                linger_ms=self.linger_ms,
                request_timeout_ms=self.request_timeout_ms,
                max_batch_size=1_048_576,
            )
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(KafkaError, OSError):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _run(self) -> None:
        pause = self.retry_pause_s
        while True:
            await self._ready.wait()
            if not self._queue:
                self._ready.clear()
                continue
            batch = [self._queue.popleft() for _ in range(min(self.batch_records, len(self._queue)))]
            try:
                await self._send(batch)
            except (KafkaError, OSError) as exc:
                self.stats.failed_batches += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
                self._queue.extendleft(reversed(batch))
                self._warn_dropped()
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.max_retry_pause_s)
                continue
            pause = self.retry_pause_s
            self.stats.published += len(batch)
            self.stats.queued -= len(batch)
            self.stats.queued_bytes -= sum(len(value) for _, value in batch)
            self.stats.last_error = ""

    async def _send(self, batch: list[tuple[bytes | None, bytes]]) -> None:
        """Send a batch and wait until the broker acknowledged every record of it."""
        producer = await self._connected()
        futures = [await producer.send(self.topic, value, key=key) for key, value in batch]
        results = await asyncio.gather(*futures, return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            raise failure if isinstance(failure, KafkaError | OSError) else KafkaError(str(failure))
