"""Faust's aiokafka consumer with these changes: nothing is delivered between a seek to committed offsets and
the clearing of the stream buffers that follows it; each fetched message is delivered without a task when it
can be; and fetching serves every partition without long waits (``ConsumerThread``, ``DRAIN_WAIT_S``: each
partition gets its share of a poll, fetch requests wait 50 ms for data, not 1,500, the drain loop polls every
50 ms, not every second).

**The seek.** After a rebalance (and after its table recovery) Faust seeks the assigned partitions to their
committed offsets, then resumes flow, which clears every stream buffer. Flow is already active while the seek
awaits the coordinator (table recovery resumes it to read the changelogs), so records fetched from the new
positions during the seek were delivered into the buffers, then cleared with them, while the consumer's read
position stayed past them: they were never processed. A worker taking over partitions after a crash lost
exactly those records (the kill test, 3 of 6 runs with eager delivery; once in a full bench's two-worker run
with Faust's own delivery). Here a seek to committed offsets stops the flow first; Faust resumes it after
the clear, so records are delivered only once nothing will clear them. A batch the drain loop holds when
the flow stops is dropped unread, and fetched again from the new positions.

**Eager delivery.** Faust 0.15.3 wraps every message's delivery in
``wait_first(callback(message), suspend_flow.wait())``: a task, four futures and an ``asyncio.wait`` per
message, so that a delivery blocked on a full stream buffer or on suspended flow can be interrupted. Here the
delivery runs at once; only one that actually suspends gets the task and the ``wait_first``, so an
interrupted delivery behaves as in Faust. The profile (docs/PERFORMANCE.md) showed that wrapping as the
largest part of Faust's per-message cost. While a rebalance and its recovery are under way, every message is
delivered Faust's way: with the seek fix alone, one kill-test run in about twenty still ended with the worker
taking over processing nothing (cause not found; docs/RELIABILITY.md, fix 2).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, cast

import faust
from aiokafka.errors import ConsumerStoppedError
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from mode import ServiceT

from streams.worker import faust_private
from streams.worker.watchdog import LoopWatchdog

DRAIN_WAIT_S = 0.05
"""How long one poll of the drain loop waits for records. Faust's 1 s: a poll that began while the queue's
partitions were held out (the posting agent at its limit) waited for new records of the others only, and the
queue's records, fetched and waiting, were delivered up to a second after the partitions were released."""


class ConsumerThread(AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, its fetch requests waiting ``App.fetch_max_wait_ms`` for data.

    Faust fixes aiokafka's ``fetch_max_wait_ms`` at 1,500 ms, and aiokafka keeps one fetch request in flight
    per broker. A request for partitions with nothing new (the queue caught up, the predictions read to
    their end, partitions resumed just after the request went out) held back for up to 1.5 s every
    partition that had data meanwhile: the posting agent sat idle 0.5-1 s at a time while the queue grew
    (docs/PERFORMANCE.md, "Fetch waits").
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        faust_private.set_fetch_max_wait(consumer, cast(App, self.app).fetch_max_wait_ms)
        return consumer

    async def on_start(self) -> None:
        """Start the consumer, and watch this thread's loop, which sends the group heartbeats."""
        limit = cast(App, self.app).loop_stall_warn_s
        if limit > 0:
            LoopWatchdog(limit, name="consumer thread loop (heartbeats)").start()
        await super().on_start()

    async def on_thread_stop(self) -> None:
        """Stop the consumer; leave the group first when the app says so, also as a static member.

        aiokafka leaves the group on close only without a ``group.instance.id``: a static member keeps its
        place until its session times out (KIP-345), so its partitions wait that long. Without the id,
        aiokafka sends LeaveGroup with the member id, which the coordinator honours for a static member too.
        """
        if cast(App, self.app).leave_group_on_stop:
            faust_private.leave_group_on_close(self)
        await super().on_thread_stop()

    async def seek_to_committed(self) -> Mapping[Any, int]:
        """Seek to the committed offsets, and the agents' partitions that have none (or 0) to their start.

        aiokafka seeks only partitions whose committed offset is above 0; the others stay where the consumer
        has read to. Records fetched before a rebalance and dropped unacknowledged (Faust clears the stream
        buffers on resuming; ``EventReader.take`` drops a batch of an older generation) were then never
        fetched again: in one CI run a worker restarted after a kill (its predecessor had committed nothing)
        read every partition to its end and processed nothing, every partition ``committed: None``.
        """
        committed = await super().seek_to_committed()
        sources = self.app.topics.acking_topics  # the agents' topics, not the tables' changelogs
        unset = [tp for tp, offset in committed.items() if not offset and tp.topic in sources]
        if unset:
            await self.seek_to_beginning(*unset)
        return committed

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: set[Any],
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> dict[Any, list[Any]]:
        """Up to ``max_records`` fetched records, each partition with records getting its share first.

        aiokafka drains its fetched partitions in the order they were fetched, so a poll took all its
        records from the first one or two partitions: while the predictions' 8 MB fetches (~8,000 events a
        partition) lay ahead, the queue's records were not delivered, and the posting agent sat idle for up
        to a second at a time while the selecting agent read on. Here each active partition first gets
        ``max_records / partitions``; what is left of ``max_records`` goes Faust's way.
        """
        partitions = list(active_partitions)  # the set is Faust's own: pausing a partition changes it meanwhile
        if not (self.consumer.flow_active and partitions and max_records) or faust_private.fetch_error_held(
            consumer, partitions
        ):
            return cast(
                dict[Any, list[Any]], await super()._fetch_records(consumer, active_partitions, timeout, max_records)
            )
        if faust_private.fetcher_closed(consumer):
            raise ConsumerStoppedError()
        drained = await faust_private.take_shares(consumer, partitions, max(1, max_records // len(partitions)))
        left = max_records - sum(len(records) for records in drained.values())
        if left <= 0:
            return drained
        more = await super()._fetch_records(consumer, active_partitions, 0 if drained else timeout, left)
        for tp, records in (more or {}).items():
            drained[tp] = drained[tp] + records if tp in drained else records
        return drained


class Consumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer; its drain loop is Faust 0.15.3's own but for the eager delivery."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        """Stop the flow, then seek to the committed offsets; Faust resumes the flow after clearing the
        stream buffers, so nothing fetched from the new positions is delivered into a buffer about to be
        cleared."""
        self.stop_flow()
        await super().perform_seek()

    def hold_partitions(self, tps: set[Any]) -> None:
        """Stop fetching ``tps`` (an agent holds as much as it may), still delivering what was fetched.

        Faust's ``pause_partitions`` alone makes the drain loop skip the records of a paused partition that
        were already fetched, though the read position is past them: they are lost until the next seek (a
        fault test lost 950 queue records so). Partitions over their buffer's pressure limit are kept out of
        the fetch the same way, and their fetched records delivered: ``_buffered_partitions``.
        """
        self.pause_partitions(tps)
        faust_private.buffered_partitions(self).update(tps)

    def release_partitions(self, tps: set[Any]) -> None:
        """Fetch again what :meth:`hold_partitions` held (those still assigned; not during a rebalance, whose
        recovery resumes every assigned partition itself)."""
        faust_private.buffered_partitions(self).difference_update(tps)
        if not self.app.rebalancing:
            self.resume_partitions(tps & self.assignment())

    async def _deliver(self, message: Any) -> None:
        """Deliver one message, without a task unless the delivery suspends; while a rebalance and its
        recovery are under way, Faust's way (a task raced against suspended flow), which its rebalance
        handling was written around."""
        if self.app.rebalancing:
            await self.wait_first(self.callback(message), self.suspend_flow.wait())
            return
        delivery = cast(Coroutine[Any, Any, Any], self.callback(message))
        try:
            waiting_on = delivery.send(None)
        except StopIteration:
            return  # delivered without suspending: the common case
        await self.wait_first(faust_private.drive(delivery, waiting_on), self.suspend_flow.wait())

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - run by the worker
        await faust_private.drain_messages(self, fetcher, self._deliver, DRAIN_WAIT_S)


class Transport(AIOKafkaTransport):
    """The aiokafka transport with this module's :class:`Consumer`."""

    Consumer = Consumer


class App(faust.App):
    """A Faust app on this module's :class:`Transport`, which tells whoever asks when a rebalance begins."""

    fetch_max_wait_ms = 1500  # Faust's; the worker sets its own (WorkerSettings.fetch_max_wait_ms)
    leave_group_on_stop = True  # WorkerSettings.leave_group_on_stop
    loop_stall_warn_s = 0.0  # WorkerSettings.loop_stall_warn_s: watch the consumer thread's loop when above 0
    _rebalance_callbacks: tuple[Callable[[], None], ...] = ()

    def call_on_rebalance_start(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the app's loop as soon as a rebalance begins, before Faust waits for the
        records being worked on (aiokafka announces it from the consumer thread)."""
        self._rebalance_callbacks = (*self._rebalance_callbacks, callback)

    def on_rebalance_start(self) -> None:
        super().on_rebalance_start()
        for callback in self._rebalance_callbacks:
            self.loop.call_soon_threadsafe(callback)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
