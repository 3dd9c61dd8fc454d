"""Fault injection with real processes on the real broker: nothing lost, nothing duplicated."""

from __future__ import annotations

import time

import pytest

from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import events_read, get_json, wait_settled
from tests.faults.conftest import (
    SLOW_POSTING,
    assert_balanced,
    assert_exactly_once,
    event_lines,
    expected_ids,
    fault_config,
    posted_so_far,
    set_faults,
    wait_for,
)

pytestmark = pytest.mark.kafka


async def test_worker_killed_mid_stream_then_restarted(
    tmp_path, faulty_destination, topic_factory, producer_factory, worker_factory
) -> None:
    destination, key = faulty_destination
    config = fault_config(tmp_path, destination.url)
    lines = event_lines(3000)
    await producer_factory(await topic_factory("predictions"), lines)
    await set_faults(destination, delay_s=0.05)
    env = {"TEST_PETS_KEY": key, **SLOW_POSTING}

    first = worker_factory(config, env=env)
    wait_for(lambda: posted_so_far([first]) >= 100, timeout_s=90, what="the first posts")
    first.kill()
    await set_faults(destination)
    second = worker_factory(config, env=env)
    snapshot = wait_settled([second], events=len(lines), timeout_s=180)

    assert_exactly_once(destination, await expected_ids(config, lines))
    assert_balanced(snapshot, len(lines))


async def test_two_workers_one_killed_the_other_finishes(
    tmp_path, faulty_destination, topic_factory, producer_factory, worker_factory
) -> None:
    """Exactly once at the destination and a balanced ledger after a rebalance caused by a killed worker."""
    destination, key = faulty_destination
    config = fault_config(tmp_path, destination.url)
    lines = event_lines(3000, seed=32)
    expected = await expected_ids(config, lines)
    await producer_factory(await topic_factory("predictions"), lines)
    await set_faults(destination, delay_s=0.05)
    env = {"TEST_PETS_KEY": key, **SLOW_POSTING}

    survivor = worker_factory(config, env=env)
    victim = worker_factory(config, env=env)
    wait_for(lambda: posted_so_far([survivor, victim]) >= 100, timeout_s=90, what="the first posts")
    victim.kill()
    await set_faults(destination)
    snapshot = wait_settled([survivor], events=len(lines), timeout_s=240)

    assert_exactly_once(destination, expected)
    assert_balanced(snapshot, len(lines))


async def test_broker_stopped_and_restarted_mid_stream(
    tmp_path, kafka: LocalKafka, faulty_destination, topic_factory, producer_factory, worker_factory
) -> None:
    destination, key = faulty_destination
    config = fault_config(tmp_path, destination.url)
    lines = event_lines(3000, seed=33)
    await producer_factory(await topic_factory("predictions"), lines)
    await set_faults(destination, delay_s=0.05)
    worker = worker_factory(config, env={"TEST_PETS_KEY": key, **SLOW_POSTING})
    wait_for(lambda: posted_so_far([worker]) >= 100, timeout_s=90, what="the first posts")

    kafka.down()
    time.sleep(5)
    kafka.up(wait_s=90)
    await set_faults(destination)
    snapshot = wait_settled([worker], events=len(lines), timeout_s=240)

    assert_exactly_once(destination, await expected_ids(config, lines))
    assert_balanced(snapshot, len(lines))


async def test_destination_down_for_30_seconds(
    tmp_path, faulty_destination, topic_factory, producer_factory, worker_factory
) -> None:
    """Nothing is lost while the destination is down, and selection goes on: the posting agent holds what it
    may, the queue waits in Kafka (its partitions paused), predictions that arrive meanwhile are selected."""
    destination, key = faulty_destination
    config = fault_config(tmp_path, destination.url)
    lines = event_lines(4000, seed=34)
    predictions = await topic_factory("predictions")
    await producer_factory(predictions, lines[:2000])
    await set_faults(destination, down=True)
    # Small buffers: the posting agent reaches its limit at once, and a full agent buffer would stall the
    # drain loop all agents share (it did, before the queue's partitions were paused).
    small = {"COLLECTORS_POST_MAX_HELD": "64", "COLLECTORS_STREAM_BUFFER_MAXSIZE": "200"}
    worker = worker_factory(config, env={"TEST_PETS_KEY": key, **SLOW_POSTING, **small})

    started = time.monotonic()
    wait_for(lambda: events_read([worker]) == 2000, timeout_s=30, what="the first events selected")
    time.sleep(3)  # their queue records reach the posting agent, which holds what it may
    await producer_factory(predictions, lines[2000:])
    wait_for(lambda: events_read([worker]) == len(lines), timeout_s=30, what="events selected while down")
    queue = {name: p for name, p in get_json(f"{worker.url}/collectors/partitions/").items() if "-queue:" in name}
    assert any(p["end"] for p in queue.values()) and all(p["paused"] for p in queue.values()), queue
    time.sleep(max(0.0, 30 - (time.monotonic() - started)))
    assert destination.input_ids("ann", "pets") == [], "nothing reaches a destination that is down"
    assert posted_so_far([worker]) == 0
    await set_faults(destination)
    snapshot = wait_settled([worker], events=len(lines), timeout_s=120)

    assert_exactly_once(destination, await expected_ids(config, lines))
    assert_balanced(snapshot, len(lines))


@pytest.mark.parametrize("status", [500, 429])
async def test_destination_failing_a_fifth_of_requests(
    tmp_path, faulty_destination, topic_factory, producer_factory, worker_factory, status: int
) -> None:
    destination, key = faulty_destination
    config = fault_config(tmp_path, destination.url)
    lines = event_lines(2000, seed=35)
    await producer_factory(await topic_factory("predictions"), lines)
    await set_faults(destination, error_rate=0.2, error_status=status, seed=7)
    worker = worker_factory(config, env={"TEST_PETS_KEY": key, **SLOW_POSTING})
    snapshot = wait_settled([worker], events=len(lines), timeout_s=180)

    assert_exactly_once(destination, await expected_ids(config, lines))
    assert_balanced(snapshot, len(lines))
