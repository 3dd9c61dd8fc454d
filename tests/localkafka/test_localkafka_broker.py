"""The real local broker: start, produce, consume, offsets, idempotent up, down, restart, reset."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.tools.localkafka import LocalKafka

pytestmark = pytest.mark.kafka

PORT = int(os.environ.get("COLLECTORS_TEST_KAFKA_PORT", "19192"))


def _pid_alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.joinpath("self").is_dir():
        return stat.is_file() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A broker in a throwaway home that shares the cached jars (``LocalKafka().dist``)."""
    if shutil.which("java") is None:
        pytest.skip("java is not installed")
    kafka = LocalKafka(port=PORT, home=tmp_path_factory.mktemp("kafka-home"), dist=LocalKafka().dist)
    kafka.up(wait_s=60)
    yield kafka
    kafka.down()


async def _produce_in_two_batches(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for values in ([b"0", b"1", b"2"], [b"3", b"4"]):
            batch = producer.create_batch()
            for value in values:
                assert batch.append(key=None, value=value, timestamp=None) is not None
            await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


async def _end_offset(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


def test_status_running(broker: LocalKafka) -> None:
    status = broker.status()
    assert status.running and status.answering
    assert status.pid is not None and _pid_alive(status.pid)
    assert status.bootstrap_servers == f"127.0.0.1:{PORT}" == broker.bootstrap_servers


def test_up_is_idempotent(broker: LocalKafka) -> None:
    before = broker.status().pid
    started = time.monotonic()
    assert broker.up().pid == before
    assert time.monotonic() - started < 5


async def test_produce_consume_and_end_offsets(broker: LocalKafka) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    await _produce_in_two_batches(broker.bootstrap_servers, topic)
    assert await _end_offset(broker.bootstrap_servers, topic) == 5

    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        while len(values) < 5:
            batches = await consumer.getmany(timeout_ms=10_000)
            assert batches, "no records within 10 s"
            values += [record.value for records in batches.values() for record in records if record.value]
        assert values == [b"0", b"1", b"2", b"3", b"4"]
        assert await consumer.beginning_offsets([tp]) == {tp: 0}
        await consumer.commit()
        assert await consumer.committed(tp) == 5
    finally:
        await consumer.stop()


async def test_down_stops_and_up_keeps_data(broker: LocalKafka) -> None:
    topic = f"keep-{uuid.uuid4().hex[:8]}"
    await _produce_in_two_batches(broker.bootstrap_servers, topic)
    pid = broker.status().pid
    assert pid is not None

    assert broker.down() is True
    assert not _pid_alive(pid)
    assert not broker.pid_file.exists()
    assert broker.status().state == "stopped"
    assert broker.down() is False

    assert broker.up().running
    assert await _end_offset(broker.bootstrap_servers, topic) == 5


async def test_reset_discards_topics(broker: LocalKafka) -> None:
    topic = f"gone-{uuid.uuid4().hex[:8]}"
    await _produce_in_two_batches(broker.bootstrap_servers, topic)
    broker.up(reset=True)
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    try:
        assert topic not in await admin.list_topics()
    finally:
        await admin.close()
