"""Faust, set up for throughput: settings chosen by measurement, per-event sensors off, no spinner.

Measured on this project's 2-core machine (docs/PERFORMANCE.md): each change here removes work Faust would
otherwise do for every record, without weakening a delivery guarantee.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import Callable, Iterable
from time import monotonic
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner, murmur2
from faust.sensors.monitor import Monitor

from streams.core.logformat import LogFormat, dress_handlers
from streams.kafka.producing import bootstrap_address
from streams.worker import faust_private
from streams.worker.faust_consumer import Consumer


@functools.lru_cache(maxsize=8192)
def _partition_index(key: bytes, count: int) -> int:
    return cast(int, murmur2(key) & 0x7FFFFFFF) % count


_KEYLESS = DefaultPartitioner()  # a random available partition: nothing to remember


def keyed_partition(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's default partitioner (the Java client's murmur2 of the key), remembering recent keys.

    The queue's keys are collector ids, a few per worker: murmur2 in pure Python cost ~4% of the worker's
    time when computed for every queued record. Same partitions as the default, so keys written by any other
    producer land where the worker's do.
    """
    if key is None:
        return cast(int, _KEYLESS(key, all_partitions, available))
    return all_partitions[_partition_index(key, len(all_partitions))]


THROUGHPUT_SETTINGS: dict[str, Any] = {
    # Bigger fetches and polls: fewer round trips per record.
    "broker_max_poll_records": 5000,
    "consumer_max_fetch_size": 8 * 1024 * 1024,
    # Batch produced records (queue, dead letters, changelogs) for 20 ms, up to 1 MB a batch.
    "producer_linger": 0.02,
    "producer_max_batch_size": 1024 * 1024,
    "producer_partitioner": keyed_partition,
    # acks=all stays: a queued input must be on the broker before its prediction's offset is committed.
    "producer_acks": -1,
}


class RawSchema(faust.Schema[bytes, bytes]):
    """Keys and values as the bytes Kafka holds, the event made directly.

    Faust's decoder passes every key and value through its serializer registry (the raw codec, settings
    lookups) to get the same bytes back; it showed as ~8% of the worker's time in the profile. The event class
    is looked up once: ``app.create_event`` reads it from the settings for every message, and Faust's settings
    record each attribute read (~3% of the posting agent's time in py-spy).
    """

    def __init__(self) -> None:
        super().__init__(key_serializer="raw", value_serializer="raw")

    def compile(self, app: Any, **kwargs: Any) -> Any:
        event = app.conf.Event

        async def decode(message: Any, *, propagate: bool = False) -> Any:
            return event(app, message.key, message.value, message.headers, message)

        return decode


class QuietMonitor(Monitor):
    """Faust's monitor without its per-record bookkeeping; rebalance, commit and lag tracking stay.

    Faust's slow-stream check reads ``stream_inbound_time`` (when a partition's last event was taken), which
    ``on_stream_event_in`` sets per event; the agents read their channels in batches instead of through the
    stream, so :class:`EventReader` sets it once per batch. Without it, a healthy worker logged "Stream has
    not started processing" whenever a check found a partition with records not yet fetched.
    """

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        """Skip per-message counters."""

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> dict[str, Any] | None:
        """Skip per-event timing (the inbound time is set per batch by :class:`EventReader`)."""
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None) -> None:
        """Skip per-event timing."""

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        """Skip per-message timing."""

    def on_table_get(self, table: Any, key: Any) -> None:
        """Skip per-read counters."""

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        """Skip per-write counters."""

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int, valsize: int) -> Any:
        """Skip per-send counters."""
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        """Skip per-send latency."""


def tune_gc(young_threshold: int) -> None:
    """Freeze what the worker loaded (Faust, the collectors' compiled workflows) out of the full collections,
    and collect the young generation every ``young_threshold`` net allocations (0: Python's default).

    A worker holds buffers of thousands of records, so the young generation fills with objects that are still
    alive: at Python's default of 700, full collections over every object the worker loaded took ~13% of its
    time (gc.callbacks timing over 60,000 events, docs/PERFORMANCE.md).
    """
    gc.freeze()
    if young_threshold:
        _young, middle, old = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, old)


STARTUP_GRACE_S = 60.0
"""How long after a worker starts aiokafka's reports of a group coordinator not found yet are not logged."""


class StartupNoise(logging.Filter):
    """Drops aiokafka's reports that the group coordinator is not available yet, for the worker's first
    :data:`STARTUP_GRACE_S` seconds.

    A broker creates its offsets topic on the first group request it gets and loads a group's coordinator on
    its first request after a start: aiokafka then logs "Group Coordinator Request failed:
    GroupCoordinatorNotAvailableError" (or CoordinatorLoadInProgress) and "Marking the coordinator dead",
    and retries until it joins, a second or two later. Past the grace period the same reports mean the
    coordinator was lost, and are logged.
    """

    TRANSIENT = ("GroupCoordinatorNotAvailable", "CoordinatorLoadInProgress", "NotCoordinator")

    def __init__(self, grace_s: float = STARTUP_GRACE_S) -> None:
        super().__init__()
        self.until = monotonic() + grace_s

    def filter(self, record: logging.LogRecord) -> bool:
        if monotonic() >= self.until:
            return True
        message = record.getMessage()
        if message.startswith("Marking the coordinator dead"):
            return False
        failed_lookup = message.startswith("Group Coordinator Request failed")
        return not (failed_lookup and any(error in message for error in self.TRANSIENT))


class Worker(faust.Worker):
    """A worker without the terminal spinner: with it, Faust sets the root logger to DEBUG so every debug
    call in Faust and aiokafka builds a log record (and writes escape codes into log files)."""

    def __init__(self, *args: Any, log_format: LogFormat = "text", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None
        logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(StartupNoise())
        self.log_format = log_format

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        """Write in the chosen format, with library noise at its level (:class:`~streams.core.logformat.Demote`)."""
        dress_handlers(logger, self.log_format, level)


class EventReader:
    """An agent's events in batches, read from its channel directly, acknowledged by the agent.

    Create it as soon as the agent starts: it subscribes the agent's channel at once, so the subscription is
    part of the worker's first one (a channel added during a rebalance would not be delivered to).

    ``Stream.take_events`` batches too, but still runs Faust's per-event iteration (a sleep, processors, a
    buffer callback) for each event. Per event this does only what that iteration must: drop the events
    fetched before a rebalance, without acknowledging them. After a rebalance Faust seeks every partition it
    assigns to its committed offset, so each dropped event is fetched again, in the new generation, once the
    tables are recovered. (Faust's own iteration acknowledges the events it skips, which lets a commit pass
    over events never processed; processing them instead would count them against ledgers still being
    recovered, as flow resumes before recovery ends.)

    The agent tracks the events it starts working on (:meth:`track`: a rebalance waits for them) and
    acknowledges each once its outcome is counted (:meth:`ack`), so offsets are committed only after.
    """

    def __init__(self, stream: faust.StreamT[Any], *, max_size: int, within_s: float) -> None:
        self.app = stream.app
        self.stream = stream
        self.max_size = max_size
        self.within_s = within_s
        self._channel = cast(faust.ChannelT[Any], aiter(stream.channel))
        self._unacked = self.app.consumer.unacked
        self._acking_topics = self.app.topics.acking_topics
        self._topics: set[str] = set(getattr(stream.channel, "topics", None) or ())  # the topics it reads
        self._paused: set[Any] = set()

    def pause_fetching(self) -> None:
        """Stop fetching this agent's partitions (it holds as much as it may); what was fetched still comes.

        The agents share Faust's one drain loop: once this agent's buffer is full, delivering its next record
        waits, and every other agent's records wait behind it. Held out of the fetch, this agent's partitions
        wait in Kafka and the other agents read on. Not during a rebalance: Faust pauses and resumes every
        partition itself then.
        """
        if self.app.rebalancing:
            return
        consumer: Consumer = cast(Consumer, self.app.consumer)
        mine = {tp for tp in consumer.assignment() if tp.topic in self._topics} - self._paused
        if mine:
            consumer.hold_partitions(mine)
            self._paused |= mine

    def resume_fetching(self) -> None:
        """Fetch again the partitions :meth:`pause_fetching` held."""
        paused, self._paused = self._paused, set()
        if paused:
            cast(Consumer, self.app.consumer).release_partitions(paused)

    @property
    def generation(self) -> int:
        """The consumer group generation: it changes with every rebalance."""
        return int(self.app.consumer_generation_id)

    def flowing(self) -> bool:
        """False while a rebalance is under way."""
        return bool(self.app.flow_control.is_active())

    async def take(self, wait_s: float | None = None, wake: asyncio.Event | None = None) -> list[Any] | None:
        """The next batch of up to ``max_size`` events, waiting ``within_s`` to fill it once one arrived.

        An empty list comes back when no event arrived within ``wait_s`` or ``wake`` was set first (the agent
        has other work: a request finished). None: the worker stops.
        """
        queue = self._channel.queue
        faust_private.raise_queued_error(queue)
        batch: list[Any] = []
        if queue.empty():
            # What queue.get() does when empty: let partitions paused for a full buffer be fetched again.
            faust_private.endorse_pressure_drop(queue)
            try:
                first = await self._next(wait_s, wake)
            except StopAsyncIteration:  # the channel closed: the worker is stopping
                return None
            if first is None:
                return None if self.stream.should_stop else []
            batch.append(first)
        get_nowait = queue.get_nowait
        while len(batch) < self.max_size and not queue.empty():
            batch.append(get_nowait())
        if len(batch) < self.max_size and self.within_s > 0:  # give the batch ``within_s`` to fill
            await self._sleep_until(
                lambda: queue.qsize() >= self.max_size - len(batch) or (wake is not None and wake.is_set()),
                self.within_s,
            )
            while len(batch) < self.max_size and not queue.empty():
                batch.append(get_nowait())
        if not self.flowing():
            return []  # a rebalance began: these are fetched again after it
        generation = self.generation
        taken = [event for event in batch if event.message.generation_id == generation]
        self._taken_now(taken)
        return taken

    def _taken_now(self, events: list[Any]) -> None:
        """Tell Faust's slow-stream check that these events' partitions were just processed."""
        inbound = self.app.monitor.stream_inbound_time
        now = monotonic()
        for event in events:
            inbound[event.message.tp] = now

    async def _next(self, wait_s: float | None, wake: asyncio.Event | None) -> Any | None:
        """The channel's next event; None when ``wait_s`` passed or ``wake`` was set first."""
        if wait_s is None and wake is None:
            return await self._channel.__anext__()
        if wake is not None and wake.is_set():
            return None
        getter = asyncio.ensure_future(self._channel.__anext__())
        waiters: set[asyncio.Future[Any]] = {getter}
        woken = asyncio.ensure_future(wake.wait()) if wake is not None else None
        if woken is not None:
            waiters.add(woken)
        try:
            await asyncio.wait(waiters, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if woken is not None:
                woken.cancel()
            if not getter.done():
                getter.cancel()  # safe: a cancelled queue.get() leaves its item in the queue
        if getter.done() and not getter.cancelled():
            return getter.result()
        return None

    async def _sleep_until(self, condition: Callable[[], bool], limit_s: float) -> None:
        """Poll ``condition`` every 5 ms until it is true, for up to ``limit_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0 or self.stream.should_stop:
                return
            await asyncio.sleep(min(remaining, 0.005))

    def track(self, events: Iterable[Any]) -> None:
        """The agent started working on these events: a rebalance waits until they are acknowledged."""
        unacked, acking_topics = self._unacked, self._acking_topics
        for event in events:
            message = event.message
            if message.topic in acking_topics and not message.tracked:
                message.tracked = True
                unacked.add(message)

    def untrack(self, events: Iterable[Any]) -> None:
        """The agent holds these events again: a rebalance need not wait for them (they are read again).

        Only messages :meth:`track` added are untracked: a caught-up record stays marked tracked, so it is
        never added to the set a rebalance waits on (its ack is a no-op and would never take it out)."""
        unacked = self._unacked
        for event in events:
            if event.message in unacked:
                event.message.tracked = False
                unacked.discard(event.message)

    async def catch_up(self, tp: Any, start: int, until: int) -> list[CaughtUp]:
        """The records of partition ``tp`` from ``start`` up to (not including) ``until``, read with a
        consumer of their own (Faust's consumer drops records below its read position after a seek, so
        seeking it back does not bring them). Their offsets are below the committed one: nothing to ack."""
        servers = [bootstrap_address(str(url).rstrip("/")) for url in self.app.conf.broker]  # every one given
        consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = TopicPartition(tp.topic, tp.partition)
            consumer.assign([partition])
            consumer.seek(partition, start)
            records: list[CaughtUp] = []
            while await consumer.position(partition) < until:
                fetched = await consumer.getmany(partition, timeout_ms=1000, max_records=5000)
                for record in fetched.get(partition, []):
                    if record.offset < until:
                        records.append(CaughtUp(CaughtUpMessage(tp, record)))
            return records
        finally:
            await consumer.stop()

    @staticmethod
    def ack(events: Iterable[Any]) -> None:
        """Their outcomes are counted: their offsets may be committed."""
        for event in events:
            event.ack()


class CaughtUpMessage:
    """What the agents read of a Faust message, for a record read by :meth:`EventReader.catch_up`."""

    def __init__(self, tp: Any, record: Any) -> None:
        self.tp = tp
        self.topic: str = record.topic
        self.partition: int = record.partition
        self.offset: int = record.offset
        self.key: bytes | None = record.key
        self.value: bytes | None = record.value
        self.timestamp: float = record.timestamp / 1000
        self.tracked = True  # nothing for a rebalance to wait for: its offset is committed already


class CaughtUp:
    """An event read by :meth:`EventReader.catch_up`; acknowledging it is a no-op."""

    def __init__(self, message: CaughtUpMessage) -> None:
        self.message = message

    def ack(self) -> bool:
        return False
