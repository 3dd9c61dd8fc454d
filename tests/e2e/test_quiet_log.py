"""A healthy worker logs no WARNING or ERROR line: each one an operator sees must mean something is wrong."""

from __future__ import annotations

import asyncio
import re

import orjson
import pytest

from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import wait_settled
from streams.tools.samples.generate import events
from tests.operations.support import config

pytestmark = pytest.mark.kafka

NOISY = re.compile(r"\[(WARNING|ERROR|CRITICAL)\]|Traceback")


async def test_a_healthy_worker_under_steady_load_logs_no_warning_or_error(
    tmp_path, kafka: LocalKafka, topic_factory, producer_factory, destination_factory, worker_factory
) -> None:
    destination = destination_factory()
    key = destination.add_app("ann", "pets")
    predictions = await topic_factory("predictions")
    await topic_factory("queue")
    backlog = [orjson.dumps(e) for e in events(30_000, seed=5)]
    steady = [orjson.dumps(e) for e in events(20_000, seed=6, start=30_001)]
    await producer_factory(predictions, backlog)
    # Faust's slow-stream check every 7 s, with a 10 s limit: a partition with records not yet fetched whose
    # last event was taken over 10 s before is reported; a worker keeping up has none.
    worker = worker_factory(
        config(tmp_path / "collectors.yaml", destination.url),
        env={"TEST_PETS_KEY": key, "COLLECTORS_STREAM_PROCESSING_TIMEOUT_S": "10"},
    )
    for start in range(0, len(steady), 1_000):  # 1,000 events a second for 20 s
        await producer_factory(predictions, steady[start : start + 1_000])
        await asyncio.sleep(1)
    await asyncio.to_thread(wait_settled, [worker], events=len(backlog) + len(steady), timeout_s=240)
    await asyncio.sleep(16)  # two more checks, with every partition caught up
    noisy = [line for line in worker.log.read_text().splitlines() if NOISY.search(line)]
    assert not noisy, "\n".join(noisy)
