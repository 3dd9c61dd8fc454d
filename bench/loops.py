"""Plain aiokafka loops: fill the events topic, and the two ceilings the worker is compared with.

* raw: ``getmany`` and ``orjson.loads`` per event, nothing else.
* baseline A: ``getmany``, ``orjson.loads``, :func:`streams.core.selection.select` (the worker's own pre-queue code,
  with an index compiled from the bench's collectors file), survivors produced to a queue topic in batches;
  each fetched batch's deliveries are awaited before the next fetch, as a commit would need.
* a paced producer for the latency and stalled-destination runs: events at a steady rate, each stamped with
  the wall clock just before it is sent.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from streams.core.ledger import Ledger
from streams.core.routing import CollectorIndex
from streams.core.selection import select
from streams.kafka.producing import ensure_topic

PRODUCED_AT = "produced_at_ns"
"""The metadata field the paced producer stamps: wall-clock nanoseconds when the event was sent."""

MAX_RECORDS = 10_000
FETCH_BYTES = 64 * 1024 * 1024
PARTITION_FETCH_BYTES = 8 * 1024 * 1024
BATCH_BYTES = 1024 * 1024


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU time the process has used so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass(slots=True)
class Window:
    """One measured run: events handled, wall time from first to last event, CPU seconds per process."""

    events: int
    seconds: float
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    def cpu_us_per_event(self, name: str) -> float | None:
        """CPU µs per event of the process ``name`` (e.g. ``broker``), when it was measured."""
        return self.cpu[name] / self.events * 1e6 if name in self.cpu and self.events else None

    def cpu_us(self) -> dict[str, float | None]:
        """CPU µs per event of every process measured, to 0.1 µs."""
        return {name: None if (us := self.cpu_us_per_event(name)) is None else round(us, 1) for name in self.cpu}


class Stopwatch:
    """Wall clock and the CPU time of some processes, between ``start`` and ``stop``."""

    def __init__(self, processes: Mapping[str, psutil.Process]) -> None:
        self._processes = dict(processes)
        self._started = 0.0
        self._cpu: dict[str, float] = {}

    def start(self) -> None:
        self._started = time.monotonic()
        self._cpu = {name: cpu_seconds(p) for name, p in self._processes.items()}

    @property
    def started(self) -> bool:
        return self._started > 0

    def stop(self, events: int) -> Window:
        seconds = time.monotonic() - self._started
        cpu = {name: cpu_seconds(p) - self._cpu[name] for name, p in self._processes.items()}
        return Window(events=events, seconds=seconds, cpu=cpu)


def _progress(label: str, done: int, total: int) -> None:
    print(f"\r{label} {done:,}/{total:,}", end="" if done < total else "\n", file=sys.stderr, flush=True)


async def fill_topic(bootstrap: str, topic: str, lines: list[bytes], keys: list[bytes], *, partitions: int) -> None:
    """Create ``topic`` and produce every line keyed by its id (Kafka's default partitioner), in 1 MB batches."""
    await ensure_topic(bootstrap, topic, partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=BATCH_BYTES)
    await producer.start()
    try:
        partitioner = DefaultPartitioner()
        every = list(range(partitions))
        batches = {p: producer.create_batch() for p in every}
        sent: list[asyncio.Future[object]] = []
        step = max(1, len(lines) // 20)
        for number, (key, line) in enumerate(zip(keys, lines, strict=True), start=1):
            partition = partitioner(key, every, every)
            if batches[partition].append(timestamp=None, key=key, value=line) is None:
                sent.append(await producer.send_batch(batches[partition], topic, partition=partition))
                batches[partition] = producer.create_batch()
                batches[partition].append(timestamp=None, key=key, value=line)
            if number % step == 0:
                _progress(f"publishing to {topic}", number, len(lines))
        for partition, batch in batches.items():
            if batch.record_count():
                sent.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    # The broker's new log pages are written back now, not ~30 s later (the kernel's dirty page expiry) in the
    # middle of the variant measured next: the first scaling run, right after its topic was filled, had been
    # the slowest of the four in a run.
    await asyncio.to_thread(os.sync)


async def topic_size(bootstrap: str, topic: str, partitions: int) -> int:
    """How many records the topic holds (the sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return sum((await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])).values())
    finally:
        await consumer.stop()


async def consume(
    bootstrap: str,
    topic: str,
    count: int,
    on_batch: Callable[[list[bytes]], Awaitable[None]],
    *,
    partitions: int,
    watch: Stopwatch,
    timeout_s: float,
) -> Window:
    """Read ``topic`` from the beginning until ``count`` records went through ``on_batch``; time first to last."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=FETCH_BYTES,
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        deadline = time.monotonic() + timeout_s
        seen = 0
        while seen < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {seen:,} of {count:,} records of {topic} in {timeout_s:.0f}s")
            fetched = await consumer.getmany(timeout_ms=500, max_records=MAX_RECORDS)
            values = [record.value for records in fetched.values() for record in records if record.value is not None]
            if not values:
                continue
            if not watch.started:
                watch.start()
            await on_batch(values)
            seen += len(values)
        return watch.stop(seen)
    finally:
        await consumer.stop()


async def raw(bootstrap: str, topic: str, count: int, *, partitions: int, watch: Stopwatch, timeout_s: float) -> Window:
    """Consume and decode every event, nothing more."""

    async def decode(values: list[bytes]) -> None:
        for value in values:
            orjson.loads(value)

    return await consume(bootstrap, topic, count, decode, partitions=partitions, watch=watch, timeout_s=timeout_s)


async def baseline_a(
    bootstrap: str,
    topic: str,
    queue_topic: str,
    count: int,
    index: CollectorIndex,
    *,
    partitions: int,
    watch: Stopwatch,
    timeout_s: float,
) -> tuple[Window, int]:
    """Consume, decode, select with the worker's rules, produce survivors; return the window and survivors."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=BATCH_BYTES)
    await producer.start()
    ledger = Ledger()
    survivors = 0

    async def decide_and_queue(values: list[bytes]) -> None:
        nonlocal survivors
        deliveries = []
        for value in values:
            queued, _rejected = select(orjson.loads(value), index, ledger)
            for collector, record in queued:
                deliveries.append(await producer.send(queue_topic, orjson.dumps(record), key=collector.id.encode()))
        await asyncio.gather(*deliveries)
        survivors += len(deliveries)

    try:
        window = await consume(
            bootstrap, topic, count, decide_and_queue, partitions=partitions, watch=watch, timeout_s=timeout_s
        )
    finally:
        await producer.stop()
    return window, survivors


@dataclass(frozen=True, slots=True)
class Paced:
    """What the paced producer did: events sent, over how long, and its wall-clock start (ns)."""

    sent: int
    seconds: float
    started_ns: int

    @property
    def events_per_s(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("nan")


async def produce_paced(
    bootstrap: str, topic: str, source: Iterator[dict[str, Any]], *, rate: float, seconds: float
) -> Paced:
    """Produce ``rate * seconds`` events from ``source`` at ``rate`` events/s (topped up every 5 ms), keyed by
    id, each stamped with :data:`PRODUCED_AT` in its metadata just before it is sent; wait for every delivery."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1, max_batch_size=BATCH_BYTES)
    await producer.start()
    try:
        total, sent = int(rate * seconds), 0
        pending: list[asyncio.Future[Any]] = []
        started_ns, started = time.time_ns(), time.monotonic()
        while sent < total:
            due = min(total, int(rate * (time.monotonic() - started)) + 1)
            for event in itertools.islice(source, due - sent):
                event["output"]["input"]["data"]["metadata"][PRODUCED_AT] = time.time_ns()
                pending.append(await producer.send(topic, orjson.dumps(event), key=event["id"].encode()))
            sent = due
            for delivery in pending:
                if delivery.done():
                    delivery.result()  # raises when a delivery failed
            pending = [delivery for delivery in pending if not delivery.done()]
            await asyncio.sleep(0.005)
        await asyncio.gather(*pending)
        return Paced(sent=sent, seconds=time.monotonic() - started, started_ns=started_ns)
    finally:
        await producer.stop()
