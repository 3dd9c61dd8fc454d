"""A worker killed after queueing a batch and before saving the ledger that counts it leaves queue records no
ledger counts. The worker taking over finds them by their source header and counts them: the ledger balances."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.core.decoding import decode_event
from streams.core.ledger import Ledger
from streams.core.selection import select
from streams.core.simulate import offline_index
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import wait_settled
from streams.worker.queueing import QueueWriter
from tests.faults.conftest import assert_balanced, assert_exactly_once, event_lines, expected_ids, fault_config

pytestmark = pytest.mark.kafka


async def queue_as_a_killed_worker(bootstrap: str, topic: str, queue_topic: str, config: Path, ids: set[str]) -> int:
    """Queue the records the worker makes of the events ``ids`` (found in ``topic``), with their source
    headers, and save no ledger: what a worker killed between the two leaves behind. The records queued."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    index, queued, found = offline_index(config), 0, 0
    try:
        writer = QueueWriter(lambda: producer, queue_topic)
        while found < len(ids):
            batch = await consumer.getmany(timeout_ms=2000)
            assert batch, f"only {found} of the {len(ids)} events found in {topic}"
            for messages in batch.values():
                for message in messages:
                    event = decode_event(message.value, max_bytes=1 << 20, max_depth=32)
                    if event["id"] not in ids:
                        continue
                    found += 1
                    for collector, record in select(event, index, Ledger())[0]:
                        writer.add(collector.id.encode(), orjson.dumps(record), message.partition, message.offset)
                        queued += 1
        await writer.send()
        await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
    return queued


async def test_queue_records_left_by_a_killed_worker_are_counted_once(
    tmp_path, kafka: LocalKafka, unique, faulty_destination, topic_factory, producer_factory, worker_factory
) -> None:
    destination, key = faulty_destination
    config = fault_config(tmp_path, destination.url)
    lines = event_lines(1200, seed=47)
    before, after = lines[:600], lines[600:]
    topic = await topic_factory("predictions")
    env = {"TEST_PETS_KEY": key}

    await producer_factory(topic, before)
    first = worker_factory(config, env=env)
    wait_settled([first], events=len(before), timeout_s=120)
    first.stop()
    await producer_factory(topic, after)
    left_ids = {orjson.loads(line)["id"] for line in after[:150]}
    left = await queue_as_a_killed_worker(kafka.bootstrap_servers, topic, f"{unique}-queue", config, left_ids)
    assert left > 0

    second = worker_factory(config, env=env)
    snapshot = wait_settled([second], events=len(lines), timeout_s=120)

    assert_exactly_once(destination, await expected_ids(config, lines))
    assert_balanced(snapshot, len(lines))
    assert sum(funnel.get("requeued", 0) for funnel in snapshot["collectors"].values()) == left
    assert "counted as requeued" in second.log_tail(400)
