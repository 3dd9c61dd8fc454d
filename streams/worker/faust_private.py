"""Every use the worker makes of private parts of Faust, mode, aiokafka and asyncio, in one place.

The worker's tuning (``faust_consumer``, ``faust_tuning``) and two of its views need a few attributes and
methods that these libraries do not publish. Each one is reached through this module only, so that
``tests/worker/test_faust_private.py`` can check, for the pinned versions (:data:`PINNED`), that every one
still exists and behaves as relied on; an upgrade that changes one fails that test with the name of what
changed, not a worker that silently loses records.

What is relied on:

1. ``AIOKafkaConsumer._fetch_max_wait_ms``: read by ``AIOKafkaConsumer.start`` when it builds its fetcher;
   Faust fixes it at 1,500 ms, the worker sets its own (:func:`set_fetch_max_wait`).
2. aiokafka's fetcher: ``AIOKafkaConsumer._fetcher`` and ``._closed``, ``Fetcher._closed``,
   ``Fetcher._records`` (per partition, the fetched ``FetchResult`` or a held fetch error),
   ``Fetcher._subscriptions.fetch_context()`` and ``Fetcher.fetched_records``: each partition's share of a
   poll (:func:`fetch_error_held`, :func:`fetcher_closed`, :func:`take_shares`).
3. Faust's ``Consumer._buffered_partitions``: partitions kept out of the fetch whose fetched records are still
   delivered (:func:`buffered_partitions`).
4. Faust's ``Consumer._paused_partitions`` and ``Consumer._committed_offset``: shown per partition by the
   worker's positions view (:func:`paused_partitions`, :func:`committed_offset`).
5. Faust's ``Producer._ensure_producer``: the aiokafka producer the queue writer hands record batches to
   (:func:`aiokafka_producer`).
6. mode's ``ThrowableQueue._errors`` and ``maybe_endorse_pressure_drop``: an agent's batched read of its
   channel's queue, done the way ``ThrowableQueue.get`` does it (:func:`raise_queued_error`,
   :func:`endorse_pressure_drop`).
7. asyncio's ``Future._asyncio_future_blocking``: eager delivery goes on running a coroutine that suspended
   the way a Task would (:func:`drive`).
8. Faust methods the worker overrides or copies (:data:`OVERRIDDEN`): their source at the pinned version is
   recorded by hash, since the override's correctness rests on what the original does. The drain loop is
   Faust 0.15.3's own but for eager delivery and its poll wait (:func:`drain_messages`), using Faust's
   ``Consumer._read_offset``, ``._commit_every``, ``._n_acked``, ``._add_gap`` and mode's
   ``Service._stopped``.
9. aiokafka's ``GroupCoordinator._group_instance_id``, read by ``_maybe_leave_group`` when the consumer closes:
   it sends LeaveGroup only when it is None, so a static member (``group.instance.id``) never leaves and its
   partitions wait for its session to expire. Set to None just before the close, aiokafka sends LeaveGroup
   with the member id, which the group coordinator honours for a static member too
   (:func:`leave_group_on_close`). Faust's ``AIOKafkaConsumerThread._consumer`` holds the consumer.
10. The order of Faust's rebalance: ``ConsumerRebalanceListener.on_partitions_revoked`` calls
   ``App.on_rebalance_start`` from the consumer thread before ``App._on_partitions_revoked`` waits on the
   main loop (``Consumer.wait_empty``) for every record an agent tracks: the posting agent cancels its
   requests in flight from that first call, so the wait does not include them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, cast

from aiokafka.consumer.fetcher import FetchResult
from faust.transport.consumer import CONSUMER_FETCHING
from mode import Service, ServiceT

PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}
"""The versions whose internals this module was written against (pyproject.toml pins the same)."""

OVERRIDDEN = {
    # Faust's consumer thread: the worker's fetch wait, per-partition shares, seeks of unset partitions.
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._create_worker_consumer": "c2701bfc3e6f",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._fetch_records": "39a2c6c79fc1",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread.seek_to_committed": "775ab0adc4b0",
    "faust.transport.drivers.aiokafka:Consumer._new_consumer_thread": "0870ec53dea7",
    "faust.transport.drivers.aiokafka:Transport.create_consumer": "46cc2bf5ab14",
    # Faust's consumer: the seek that stops the flow first, the drain loop, the delivery of held partitions.
    "faust.transport.consumer:Consumer.perform_seek": "0e8c130ff4b0",
    "faust.transport.consumer:Consumer._drain_messages": "44a2500309e8",
    "faust.transport.consumer:Consumer.getmany": "4b168d84882a",
    "faust.transport.consumer:Consumer.pause_partitions": "27a1c94bdacd",
    "faust.transport.consumer:Consumer.resume_partitions": "afe6b7c02a41",
    # aiokafka: the fetch wait read at start; the fetcher drained per partition.
    "aiokafka.consumer.consumer:AIOKafkaConsumer.start": "2f1ba7044332",
    "aiokafka.consumer.fetcher:Fetcher.fetched_records": "be4348896b9b",
    # mode: the queue an agent reads in batches.
    "mode.utils.queues:ThrowableQueue.get": "57490d393d41",
    "mode.utils.queues:FlowControlQueue.get": "c14157e5ee64",
    # Faust's app: the transport it builds.
    "faust.app.base:App._new_transport": "42db531312dd",
    # Group membership: leaving on close as a static member; the consumer thread's start and stop.
    "aiokafka.consumer.group_coordinator:GroupCoordinator._maybe_leave_group": "016cd88a16e6",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread.on_thread_stop": "8dfc004e258b",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread.on_start": "38b4e8bd1e10",
    # A rebalance's start, announced before the wait for the records agents track.
    "faust.transport.drivers.aiokafka:ConsumerRebalanceListener.on_partitions_revoked": "348c3aec879f",
    "faust.app.base:App.on_rebalance_start": "5c1e23de3067",
    "faust.app.base:App._on_partitions_revoked": "d5c895bbe57d",
    "faust.transport.consumer:Consumer.wait_empty": "e4662fe24f09",
}
"""Each Faust, aiokafka or mode function the worker overrides, copies or reads around, with the first 12 hex
digits of the SHA-256 of its source at the pinned versions."""


def set_fetch_max_wait(consumer: Any, wait_ms: int) -> None:
    """Make an aiokafka consumer not yet started wait ``wait_ms`` for fetched data (Faust sets 1,500)."""
    consumer._fetch_max_wait_ms = wait_ms


def fetch_error_held(consumer: Any, partitions: Iterable[Any]) -> bool:
    """Whether aiokafka's fetcher holds a fetch error (not records) for one of ``partitions``. Then a poll goes
    aiokafka's own way, which raises the error only once no records were taken (taken records are past the read
    position: raising after taking some would lose them)."""
    fetched = consumer._fetcher._records
    return any(tp in fetched and type(fetched[tp]) is not FetchResult for tp in partitions)


def fetcher_closed(consumer: Any) -> bool:
    """Whether the aiokafka consumer or its fetcher is closed."""
    return bool(consumer._closed or consumer._fetcher._closed)


async def take_shares(consumer: Any, partitions: Iterable[Any], share: int) -> dict[Any, list[Any]]:
    """Up to ``share`` fetched records of each partition, without waiting, the way a poll takes them."""
    fetcher = consumer._fetcher
    taken: dict[Any, list[Any]] = {}
    with fetcher._subscriptions.fetch_context():
        for tp in partitions:
            taken.update(await fetcher.fetched_records((tp,), timeout=0, max_records=share))
    return taken


def buffered_partitions(consumer: Any) -> set[Any]:
    """Faust's set of partitions kept out of the fetch whose fetched records are still delivered."""
    return cast(set[Any], consumer._buffered_partitions)


def paused_partitions(consumer: Any) -> set[Any]:
    """The partitions Faust's consumer has paused."""
    return cast(set[Any], consumer._paused_partitions)


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The offset Faust's consumer last committed for ``tp`` (None: none yet)."""
    return cast(int | None, consumer._committed_offset.get(tp))


def aiokafka_producer(producer: Any) -> Callable[[], Any]:
    """The function giving the aiokafka producer under Faust's producer (started with the app)."""
    return cast(Callable[[], Any], producer._ensure_producer)


def leave_group_on_close(thread: Any) -> None:
    """Make the aiokafka consumer of Faust's consumer ``thread`` send LeaveGroup when it closes, also when it
    is a static member (item 9)."""
    consumer = thread._consumer
    if consumer is not None:
        consumer._coordinator._group_instance_id = None


def raise_queued_error(queue: Any) -> None:
    """Raise the first error put on a mode ``ThrowableQueue``, as its ``get`` does before any item."""
    if queue._errors:
        raise queue._errors.popleft()


def endorse_pressure_drop(queue: Any) -> None:
    """What a mode ``FlowControlQueue.get`` does when empty: let partitions paused for a full buffer be
    fetched again."""
    queue.maybe_endorse_pressure_drop()


async def drive(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    """Go on running a coroutine that suspended on ``waiting_on``, the way an asyncio Task would."""
    while True:
        try:
            if waiting_on is None:  # a bare yield: asyncio.sleep(0)
                await asyncio.sleep(0)
            else:
                waiting_on._asyncio_future_blocking = False
                try:
                    await waiting_on
                except asyncio.CancelledError:
                    if not waiting_on.done():  # this task was cancelled: cancel what it waits on, tell it
                        waiting_on.cancel()
                        waiting_on = coro.throw(asyncio.CancelledError())
                        continue
                except BaseException:
                    pass  # the coroutine sees the exception when it resumes, as with a Task
            waiting_on = coro.send(None)
        except StopIteration as stop:
            return stop.value


async def drain_messages(  # pragma: no cover - run by the worker
    consumer: Any, fetcher: ServiceT, deliver: Callable[[Any], Awaitable[None]], wait_s: float
) -> None:
    """Faust 0.15.3's ``Consumer._drain_messages`` but for ``deliver`` and the poll wait ``wait_s`` (Faust's
    1 s): poll, record each partition's gaps and read offset, commit every ``broker_commit_every`` acks."""
    getmany = consumer.getmany
    consumer_should_stop = cast(Service, consumer)._stopped.is_set
    fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
    get_read_offset = consumer._read_offset.__getitem__
    set_read_offset = consumer._read_offset.__setitem__
    set_flag = consumer.diag.set_flag
    unset_flag = consumer.diag.unset_flag
    commit_every = consumer._commit_every
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            ait = cast(AsyncIterator[Any], getmany(timeout=wait_s))
            await consumer.sleep(0)
            if not consumer.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await consumer._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and consumer._n_acked >= commit_every:
                            consumer._n_acked = 0
                            await consumer.commit()
                        await deliver(message)
                        set_read_offset(tp, offset)
                unset_flag(CONSUMER_FETCHING)
    except consumer.consumer_stopped_errors:
        if consumer.transport.app.should_stop:
            consumer.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if consumer.transport.app.should_stop:
            consumer.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        consumer.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)
