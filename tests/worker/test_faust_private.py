"""Each private part of Faust, mode, aiokafka or asyncio the worker relies on (streams/worker/faust_private.py)
still exists and behaves as relied on. A failure here after an upgrade names what changed: re-read it, adapt
faust_private (and the worker code it serves), then record the new version or source digest."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError
from mode.utils.queues import FlowControlEvent, ThrowableQueue

from streams.tools.localkafka.broker import LocalKafka
from streams.worker import faust_private
from streams.worker.faust_consumer import App, Consumer

UPGRADE = "an upgrade changed what streams/worker/faust_private.py relies on"


def _resolve(ref: str) -> Any:
    module, qualname = ref.split(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
        assert found is not None, f"{UPGRADE}: {ref} is gone"
    return found


@pytest.mark.parametrize("package", sorted(faust_private.PINNED))
def test_installed_versions_are_the_pinned_ones(package: str) -> None:
    pinned = faust_private.PINNED[package]
    assert version(package) == pinned, f"{UPGRADE}: {package} {version(package)} installed, written for {pinned}"
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert f"{package}=={pinned}" in pyproject["project"]["dependencies"], f"pyproject.toml must pin {package}"


@pytest.mark.parametrize("ref", sorted(faust_private.OVERRIDDEN))
def test_overridden_sources_are_the_ones_read(ref: str) -> None:
    digest = hashlib.sha256(inspect.getsource(_resolve(ref)).encode()).hexdigest()[:12]
    assert digest == faust_private.OVERRIDDEN[ref], (
        f"{UPGRADE}: the source of {ref} changed (digest {digest}); compare it with what the worker's override or"
        " copy assumes, then record the new digest in OVERRIDDEN"
    )


def test_the_drain_loop_copy_differs_from_faust_only_where_meant() -> None:
    """Faust's drain loop and the copy run the same statements but for the delivery and the poll wait."""
    original = inspect.getsource(_resolve("faust.transport.consumer:Consumer._drain_messages"))
    for needed in (
        "self._read_offset.__getitem__",
        "self._commit_every",
        "self._n_acked >= commit_every",
        "await self._add_gap(tp, r_offset + 1, offset)",
        "cast(Service, self)._stopped.is_set",
        "getmany(timeout=1.0)",
        "await self.wait_first(",
    ):
        assert needed in original, f"{UPGRADE}: Faust's drain loop no longer has {needed!r}"
    copy = inspect.getsource(faust_private.drain_messages)
    assert "getmany(timeout=wait_s)" in copy and "await deliver(message)" in copy


async def test_fetch_wait_set_before_start_is_the_one_aiokafka_fetches_with(
    kafka: LocalKafka, topic_factory: Any
) -> None:
    partitions = await _filled(kafka, await topic_factory("wait", partitions=2), per_partition=1)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, fetch_max_wait_ms=1500)
    faust_private.set_fetch_max_wait(consumer, 37)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.getmany(timeout_ms=1000)
        assert consumer._fetcher._fetch_max_wait_ms == 37, f"{UPGRADE}: aiokafka's fetcher ignores the fetch wait"
    finally:
        await consumer.stop()


async def _filled(kafka: LocalKafka, topic: str, per_partition: int) -> list[TopicPartition]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for partition in (0, 1):
            for index in range(per_partition):
                await producer.send(topic, b"%d" % index, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
    return [TopicPartition(topic, 0), TopicPartition(topic, 1)]


async def _wait_until(condition: Any, limit_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_shares_are_taken_per_partition_from_aiokafkas_fetcher(kafka: LocalKafka, topic_factory: Any) -> None:
    partitions = await _filled(kafka, await topic_factory("shares", partitions=2), per_partition=20)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        await _wait_until(lambda: all(tp in consumer._fetcher._records for tp in partitions))
        assert not faust_private.fetch_error_held(consumer, partitions)
        assert not faust_private.fetcher_closed(consumer)
        taken = await faust_private.take_shares(consumer, partitions, 3)
        assert {tp: [record.offset for record in records] for tp, records in taken.items()} == {
            partitions[0]: [0, 1, 2],
            partitions[1]: [0, 1, 2],
        }, f"{UPGRADE}: aiokafka's fetcher no longer gives a partition's share"
        assert await consumer.position(partitions[0]) == 3, f"{UPGRADE}: a share taken does not advance the position"
    finally:
        await consumer.stop()
    assert faust_private.fetcher_closed(consumer)


async def test_a_held_fetch_error_is_seen_and_raised_by_the_next_poll(kafka: LocalKafka, topic_factory: Any) -> None:
    partitions = await _filled(kafka, await topic_factory("held", partitions=2), per_partition=2)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False, auto_offset_reset="none"
    )
    await consumer.start()
    try:
        consumer.assign(partitions[:1])
        consumer.seek(partitions[0], 1_000)  # out of range, no reset: the fetcher holds the error
        await _wait_until(lambda: faust_private.fetch_error_held(consumer, partitions))
        with pytest.raises(OffsetOutOfRangeError):
            await consumer.getmany(timeout_ms=1000)
    finally:
        await consumer.stop()


def _faust_consumer() -> Consumer:
    app = App("faust-private-test", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    assert isinstance(consumer, Consumer)
    return consumer


def test_buffered_partitions_are_the_ones_faust_delivers_while_held() -> None:
    consumer = _faust_consumer()
    tp = faust.types.TP("held", 0)
    faust_private.buffered_partitions(consumer).add(tp)
    getmany = inspect.getsource(_resolve("faust.transport.consumer:Consumer.getmany"))
    assert "tp in self._buffered_partitions" in getmany, f"{UPGRADE}: Faust no longer delivers held partitions"
    consumer.on_buffer_drop(tp)  # Faust's own use of the set: a dropped pressure forgets the partition
    assert tp not in faust_private.buffered_partitions(consumer), f"{UPGRADE}: Faust keeps another set"


def test_paused_partitions_and_committed_offsets_are_faust_consumers_own() -> None:
    consumer = _faust_consumer()
    tp = faust.types.TP("shown", 0)
    assert faust_private.committed_offset(consumer, tp) is None
    consumer._committed_offset[tp] = 41  # what Faust's commit records
    assert faust_private.committed_offset(consumer, tp) == 41
    paused = faust_private.paused_partitions(consumer)
    assert isinstance(paused, set) and not paused
    source = inspect.getsource(_resolve("faust.transport.consumer:Consumer.pause_partitions"))
    assert "self._paused_partitions.update(" in source, f"{UPGRADE}: Faust records paused partitions elsewhere"


async def test_the_aiokafka_producer_under_fausts_is_reached(kafka: LocalKafka) -> None:
    app = faust.App("faust-private-producer", broker=f"kafka://{kafka.bootstrap_servers}", store="memory://")
    ensure = faust_private.aiokafka_producer(app.producer)
    with pytest.raises(Exception, match="not yet started"):
        ensure()
    await app.producer.start()
    try:
        assert isinstance(ensure(), AIOKafkaProducer), f"{UPGRADE}: Faust's producer holds no aiokafka producer"
    finally:
        await app.producer.stop()


async def test_a_queued_error_is_raised_before_any_item() -> None:
    queue: ThrowableQueue[int] = ThrowableQueue(maxsize=10, flow_control=FlowControlEvent())
    queue.put_nowait(1)
    await queue.throw(KeyError("thrown"))
    with pytest.raises(KeyError, match="thrown"):
        faust_private.raise_queued_error(queue)
    faust_private.raise_queued_error(queue)  # nothing left to raise
    assert queue.get_nowait() == 1


def test_a_pressure_drop_is_endorsed_when_the_queue_empties() -> None:
    queue: ThrowableQueue[int] = ThrowableQueue(maxsize=4, flow_control=FlowControlEvent())
    dropped: list[bool] = []
    for item in range(4):
        queue.put_nowait_enhanced(item, on_pressure_high=lambda: None, on_pressure_drop=lambda: dropped.append(True))
    while not queue.empty():
        queue._queue.popleft()  # taken without get: what the agent's batched read does before endorsing
    faust_private.endorse_pressure_drop(queue)
    assert dropped == [True], f"{UPGRADE}: mode no longer calls the pressure-drop callback of an emptied queue"


async def test_a_suspended_coroutine_is_driven_as_a_task_would() -> None:
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()

    async def delivery() -> int:
        return int(await first) + int(await second)

    coro = delivery()
    waiting_on = coro.send(None)
    assert waiting_on is first and first._asyncio_future_blocking, f"{UPGRADE}: asyncio's yield protocol"
    loop.call_soon(first.set_result, 1)
    loop.call_later(0.01, second.set_result, 2)
    assert await faust_private.drive(coro, waiting_on) == 3


async def test_a_driven_coroutine_is_cancelled_with_what_it_waits_on() -> None:
    loop = asyncio.get_running_loop()
    blocker = loop.create_future()
    cancelled: list[bool] = []

    async def delivery() -> None:
        try:
            await blocker
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    coro = delivery()
    task = asyncio.ensure_future(faust_private.drive(coro, coro.send(None)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert blocker.cancelled() and cancelled == [True]


def test_every_private_access_of_the_worker_goes_through_faust_private() -> None:
    worker = Path(faust_private.__file__).parent
    private = re.compile(r"\b(consumer|fetcher|queue|producer|app|table|stream|waiting_on)\._[a-z]\w*")
    for path in worker.glob("*.py"):
        if path.name != "faust_private.py":
            found = private.findall(path.read_text())
            assert not found, f"{path.name} reaches private attributes directly: {found}"
