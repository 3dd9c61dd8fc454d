"""Consumer group changes with real processes on the real broker: a killed worker's partitions taken over
without waiting a minute, a restart with the same worker id causing no rebalance of the others, a SIGTERM
leaving the group at once; each ending exact (every expected input once) and with balanced ledgers."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import Service, get_json, wait_settled
from streams.worker.membership import CHANGELOG_CONFIG
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

AGENT_PARTITIONS = 8  # 4 of the predictions topic, 4 of the queue
OLD_SESSION_TIMEOUT_S = 60  # Faust's default, which a killed worker's partitions used to wait out
CHANGELOG_SEGMENTS = {name: str(value) for name, value in CHANGELOG_CONFIG.items()}


def group(worker: Service) -> dict[str, Any]:
    answer: dict[str, Any] = get_json(f"{worker.url}/collectors/group/")
    return answer


def holds(worker: Service, partitions: int) -> bool:
    state = group(worker)
    return bool(state["partitions"] == partitions and not state["rebalancing"])


def sigterm(worker: Service) -> float:
    """SIGTERM, wait for the exit; the monotonic time of the exit."""
    worker.process.send_signal(signal.SIGTERM)
    worker.process.wait(timeout=60)
    return time.monotonic()


async def test_killed_worker_partitions_taken_over_before_the_old_session_timeout(
    tmp_path, faulty_destination, topic_factory, producer_factory, worker_factory
) -> None:
    destination, key = faulty_destination
    config = fault_config(tmp_path, destination.url)
    lines = event_lines(3000, seed=41)
    await producer_factory(await topic_factory("predictions"), lines)
    await set_faults(destination, delay_s=0.05)
    env = {"TEST_PETS_KEY": key, **SLOW_POSTING}

    survivor = worker_factory(config, env={**env, "COLLECTORS_WORKER_ID": "survivor"})
    victim = worker_factory(config, env={**env, "COLLECTORS_WORKER_ID": "victim"})
    wait_for(lambda: holds(survivor, 4) and holds(victim, 4), timeout_s=90, what="the partitions shared")
    wait_for(lambda: posted_so_far([survivor, victim]) >= 100, timeout_s=90, what="the first posts")
    victim.kill()
    killed = time.monotonic()
    wait_for(lambda: holds(survivor, AGENT_PARTITIONS), timeout_s=120, what="the takeover")
    taken_over_s = time.monotonic() - killed
    assert taken_over_s < OLD_SESSION_TIMEOUT_S / 2, f"partitions taken over {taken_over_s:.1f}s after the kill"
    await set_faults(destination)
    snapshot = wait_settled([survivor], events=len(lines), timeout_s=240)

    assert_exactly_once(destination, await expected_ids(config, lines))
    assert_balanced(snapshot, len(lines))


async def test_restart_with_the_same_worker_id_rebalances_nobody(
    tmp_path, faulty_destination, topic_factory, producer_factory, worker_factory
) -> None:
    """Static membership: the restarted worker gets its partitions back and the other never rebalances.
    A session timeout of 30 s leaves room for a slow start on a busy machine."""
    destination, key = faulty_destination
    config = fault_config(tmp_path, destination.url)
    lines = event_lines(3000, seed=42)
    await producer_factory(await topic_factory("predictions"), lines)
    await set_faults(destination, delay_s=0.05)
    env = {
        "TEST_PETS_KEY": key,
        **SLOW_POSTING,
        "COLLECTORS_SESSION_TIMEOUT_S": "30",
        "COLLECTORS_LEAVE_GROUP_ON_STOP": "false",
    }
    other = worker_factory(config, env={**env, "COLLECTORS_WORKER_ID": "other"})
    restarted = worker_factory(config, env={**env, "COLLECTORS_WORKER_ID": "restarted"})
    wait_for(lambda: holds(other, 4) and holds(restarted, 4), timeout_s=90, what="the partitions shared")
    wait_for(lambda: posted_so_far([other, restarted]) >= 100, timeout_s=90, what="the first posts")
    before = group(other)
    held_before = set(get_json(f"{restarted.url}/collectors/partitions/"))

    sigterm(restarted)
    again = worker_factory(config, env={**env, "COLLECTORS_WORKER_ID": "restarted"})
    wait_for(lambda: holds(again, 4), timeout_s=60, what="the restarted worker's partitions")
    assert set(get_json(f"{again.url}/collectors/partitions/")) == held_before
    await set_faults(destination)
    snapshot = wait_settled([other, again], events=len(lines), timeout_s=240)

    after = group(other)
    assert (after["rebalances"], after["generation"]) == (before["rebalances"], before["generation"])
    assert_exactly_once(destination, await expected_ids(config, lines))
    assert_balanced(snapshot, len(lines))


async def test_sigterm_leaves_the_group_at_once(
    tmp_path, kafka: LocalKafka, unique: str, faulty_destination, topic_factory, producer_factory, worker_factory
) -> None:
    """A worker stopped with SIGTERM hands its partitions over without waiting for its session to expire
    (30 s here, so only leaving the group explains a faster move), with a worker id or without."""
    destination, key = faulty_destination
    config = fault_config(tmp_path, destination.url)
    lines = event_lines(3000, seed=43)
    await producer_factory(await topic_factory("predictions"), lines)
    await set_faults(destination, delay_s=0.05)
    env = {"TEST_PETS_KEY": key, **SLOW_POSTING, "COLLECTORS_SESSION_TIMEOUT_S": "30"}
    survivor = worker_factory(config, env=env)
    leaver = worker_factory(config, env={**env, "COLLECTORS_WORKER_ID": "leaver"})
    wait_for(lambda: holds(survivor, 4) and holds(leaver, 4), timeout_s=90, what="the partitions shared")
    wait_for(lambda: posted_so_far([survivor, leaver]) >= 100, timeout_s=90, what="the first posts")

    exited = sigterm(leaver)
    wait_for(lambda: holds(survivor, AGENT_PARTITIONS), timeout_s=60, what="the handover")
    moved_s = time.monotonic() - exited
    assert moved_s < 15, f"partitions moved {moved_s:.1f}s after the worker exited (session timeout 30 s)"
    await set_faults(destination)
    snapshot = wait_settled([survivor], events=len(lines), timeout_s=240)

    assert_exactly_once(destination, await expected_ids(config, lines))
    assert_balanced(snapshot, len(lines))
    for table in ("ledger-select", "ledger-post", "operator-state"):  # bounded table recovery
        assert await segment_settings(kafka, f"{unique}-{table}-changelog") == CHANGELOG_SEGMENTS


async def segment_settings(kafka: LocalKafka, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        (answer,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        (resource,) = answer.resources
        return {name: value for name, value, *_ in resource[4] if name in CHANGELOG_SEGMENTS}
    finally:
        await admin.close()
