"""QueueWriter against the real broker: every record lands, on the default partitioner's partition, in order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.tools.localkafka.broker import LocalKafka
from streams.worker.queueing import QueueWriter


async def test_records_reach_their_keys_partitions_in_order(
    kafka: LocalKafka, topic_factory: Callable[..., Awaitable[str]]
) -> None:
    topic = await topic_factory("queue", partitions=4)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all", max_batch_size=16384)
    await producer.start()
    try:
        writer = QueueWriter(lambda: producer, topic)
        keys = [f"collector-{n}".encode() for n in range(5)]
        sent = 0
        for _ in range(2):  # two sends: the second starts new batches after the first's
            for n in range(300):  # ~1 KB records: each partition's records overflow several 16 KB batches
                key = keys[n % len(keys)]
                writer.add(key, orjson.dumps({"key": key.decode(), "n": sent, "pad": "x" * 1000}), 3, sent)
                sent += 1
            assert len(writer) == 300
            await writer.send()
            assert len(writer) == 0
        await producer.flush()
        # Where aiokafka's own send puts each key: the partitions QueueWriter must use.
        expected = {key: (await (await producer.send(topic, b'{"probe": true}', key=key))).partition for key in keys}
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest")
    await consumer.start()
    received: list[tuple[int, dict[str, Any]]] = []
    try:
        while len(received) < sent + len(keys):
            batch = await consumer.getmany(timeout_ms=2000)
            assert batch, f"only {len(received)} of {sent} records arrived"
            for tp, messages in batch.items():
                for message in messages:
                    record = orjson.loads(message.value)
                    if "probe" not in record:  # each names its source in a header
                        assert message.headers == (("src", f"3:{record['n']}".encode()),)
                    received.append((tp.partition, record))
    finally:
        await consumer.stop()

    received = [(partition, record) for partition, record in received if "probe" not in record]
    assert len(received) == sent
    by_key: dict[str, list[int]] = {}
    for partition, record in received:
        assert partition == expected[record["key"].encode()], record["key"]
        by_key.setdefault(record["key"], []).append(record["n"])
    assert all(numbers == sorted(numbers) for numbers in by_key.values())
    assert sorted(n for numbers in by_key.values() for n in numbers) == list(range(sent))
