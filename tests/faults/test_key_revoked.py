"""A key revoked mid-stream, then a new key set and the dead letters replayed: real worker, real destination,
the management API as a process, the real broker.

What the docs promise (docs/RELIABILITY.md, docs/API.md, docs/OPERATIONS.md): the destination's 11008 pauses
the collector for every worker, with the reason (the key redacted) as its ``last_error``; its pending inputs go
to the dead-letter topic, replayable; nothing is dropped. Events arriving while it is paused are counted
``paused`` and never queued, so they are not collected later, not even by the replay. Once it has a valid key
and is active again, ``collectors dlq replay`` posts what waited, exactly once, and the live traffic flows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streams.core.secrets import redact
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import wait_settled
from streams.tools.operations.commands import dlq
from streams.tools.operations.errors import EXIT_REFUSED
from tests.conftest import read_topic
from tests.e2e.management_support import (
    APP,
    USER,
    ControlApis,
    collector_body,
    empty_config,
    event_lines,
    funnel,
    invoke,
    listed,
    new_key,
    predicted_ids,
    revoke,
    wait_listed,
)
from tests.faults.conftest import SLOW_POSTING, assert_balanced, assert_exactly_once, set_faults, wait_for

pytestmark = pytest.mark.kafka

COLLECTOR = f"{USER}/{APP}/half"


@pytest.fixture
def control_apis(kafka: LocalKafka, unique: str, tmp_path: Path) -> Iterator[ControlApis]:
    apis = ControlApis(kafka, unique, tmp_path)
    yield apis
    apis.stop_all()


async def test_key_revoked_mid_stream_then_replayed(
    tmp_path,
    kafka: LocalKafka,
    unique,
    topic_factory,
    producer_factory,
    destination_factory,
    worker_factory,
    control_apis,
) -> None:
    destination = destination_factory(faults=True)
    first_key = new_key(destination, "kone")
    running = control_apis.start(destination)
    api = running.client(new_key(destination, "ownr", app_id=None))
    predictions = await topic_factory("predictions")
    worker = worker_factory(empty_config(tmp_path), env=SLOW_POSTING)
    body = collector_body("half", destination.url, first_key, pre_queue_random_sample=0.5)
    api.create("collectors", USER, APP, [body])
    wait_listed([worker], lambda state: COLLECTOR in state, timeout_s=10, what="the collector")

    # Posting is slow (a quarter of a second a request, 16 inputs a request): revoke the key mid-stream.
    await set_faults(destination, delay_s=0.25)
    batch1 = event_lines(1500, start=1, seed=81)
    expected1 = await predicted_ids(tmp_path, [body], batch1)
    await producer_factory(predictions, batch1)
    wait_for(lambda: len(destination.input_ids(USER, APP)) >= 48, timeout_s=60, what="the first posts")
    revoke(destination, first_key)
    stored_at_revocation = len(destination.input_ids(USER, APP))
    assert stored_at_revocation < len(expected1) - 100, "the key was revoked mid-stream"

    # The worker pauses the collector in the control topic: the API shows it, the key redacted.
    def paused_by_the_worker() -> bool:
        shown = api.get("collectors", USER, APP, "half")
        return shown["status"]["code"] == 52003 and bool(shown["last_error"])

    wait_for(paused_by_the_worker, timeout_s=30, what="the API to show the collector paused")
    shown = api.get("collectors", USER, APP, "half")
    assert redact(first_key) in shown["last_error"] and "11008" in shown["last_error"], shown["last_error"]
    assert shown["status"]["details"] == shown["last_error"]  # COLLECTOR_POST_INPUT_FAILED, with the reason
    assert shown["destination"]["key"] == redact(first_key)
    assert first_key not in orjson.dumps(shown).decode(), "no answer holds the key in full"
    assert listed(worker)[COLLECTOR] == {"id": COLLECTOR, "status": "paused", "last_error": shown["last_error"]}

    snapshot = wait_settled([worker], events=len(batch1), timeout_s=60)
    counts = funnel(snapshot, COLLECTOR)
    assert counts["queued"] == len(expected1), "every selected event was queued before the pause"
    assert counts.get("posted", 0) + counts["dead_lettered"] == counts["queued"], f"nothing dropped: {counts}"
    assert counts["dead_lettered"] >= 100 and counts.get("dropped", 0) == 0
    stored = set(destination.input_ids(USER, APP))
    assert len(stored) == counts.get("posted", 0) and stored <= expected1

    # Every pending input is in the dead-letter topic, replayable, with the key redacted.
    letters = await read_topic(kafka.bootstrap_servers, f"{unique}-dead-letters", expect=counts["dead_lettered"])
    assert {letter["collector_id"] for letter in letters} == {COLLECTOR}
    assert all(letter["replayable"] for letter in letters)
    assert {letter["reason"] for letter in letters} <= {"auth", "collector_paused"}
    assert {letter["input"]["id"] for letter in letters} == expected1 - stored
    assert first_key not in orjson.dumps(letters).decode()

    replay = ["replay", "--broker", kafka.bootstrap_servers, "--topic", f"{unique}-dead-letters"]
    replay += ["--control-topic", running.topic, "--collector", COLLECTOR]
    refused = await invoke(dlq, replay)
    assert refused.exit_code == EXIT_REFUSED, refused.output
    assert "paused" in refused.output and first_key not in refused.output

    # Events published while it is paused are counted `paused`, never queued.
    batch2 = event_lines(200, start=5001, seed=82)
    await producer_factory(predictions, batch2)
    snapshot = wait_settled([worker], events=len(batch1) + len(batch2), timeout_s=60)
    assert funnel(snapshot, COLLECTOR)["paused"] == len(batch2)
    assert funnel(snapshot, COLLECTOR)["queued"] == len(expected1)

    # A new key, and the collector active again: one PATCH, the key checked, the error cleared.
    second_key = new_key(destination, "ktwo")
    fixed = collector_body("half", destination.url, second_key, pre_queue_random_sample=0.5, status="active")
    [patched] = api.overwrite("collectors", USER, APP, [fixed])
    assert patched["status"]["code"] == 52001 and patched["last_error"] is None
    assert patched["destination"]["key"] == redact(second_key)
    wait_listed(
        [worker],
        lambda state: state[COLLECTOR]["status"] == "active",
        timeout_s=10,
        what="the worker to resume the collector",
    )
    await set_faults(destination)

    replayed = await invoke(dlq, replay)
    assert replayed.exit_code == 0, replayed.output
    waiting = len(expected1 - stored)
    assert f"{COLLECTOR}: posted {waiting}, duplicates 0, failed 0" in replayed.stdout, replayed.output
    again = await invoke(dlq, replay)
    assert again.exit_code == 0, again.output
    assert f"{COLLECTOR}: posted 0, duplicates {waiting}, failed 0" in again.stdout, again.output

    # Live traffic flows again, with the new key.
    batch3 = event_lines(200, start=9001, seed=83)
    await producer_factory(predictions, batch3)
    events_in = len(batch1) + len(batch2) + len(batch3)
    snapshot = wait_settled([worker], events=events_in, timeout_s=60)
    expected3 = await predicted_ids(tmp_path, [body], batch3)

    assert_exactly_once(destination, expected1 | expected3)
    assert_balanced(snapshot, events_in)
    counts = funnel(snapshot, COLLECTOR)
    assert counts["paused"] == len(batch2), "what arrived while paused is not collected later"
    assert counts["posted"] == len(stored) + len(expected3)
    for log in (running.service.log, worker.log):
        text = log.read_text(errors="replace")
        assert first_key not in text and second_key not in text, f"a key in full in {log}"
