"""Keys at rest, with real processes on the real broker: no start without a secret, rotation while a worker
posts, records in clear from earlier versions migrated, a wrong secret that blocks one collector and loses
nothing, and destinations outside the allow-list refused by the API and by workers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from schemas.management import collector_key
from streams.core.clock import utc_now
from streams.core.secrets import ENV_SECRET, SEALED_FIELD, SecretBox, generate_secret, open_document
from streams.kafka.control_topic import ControlReader, ControlWriter
from streams.tools.cli import main
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import wait_settled
from streams.tools.manage.client import ApiError
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
    wait_listed,
)
from tests.faults.conftest import wait_for
from tests.security.support import recording_server

pytestmark = pytest.mark.kafka


@pytest.fixture
def control_apis(kafka: LocalKafka, unique: str, tmp_path: Path) -> Iterator[ControlApis]:
    apis = ControlApis(kafka, unique, tmp_path)
    yield apis
    apis.stop_all()


async def control_state(bootstrap: str, topic: str) -> dict[str, dict[str, object]]:
    reader = ControlReader(bootstrap, topic)
    await reader.start()
    try:
        await reader.ready.wait()
        return dict(reader.state)
    finally:
        await reader.stop()


def wait_stored(destination: object, expected: set[str], *, timeout_s: float = 90) -> None:
    wait_for(
        lambda: set(destination.input_ids(USER, APP)) >= expected,  # type: ignore[attr-defined]
        timeout_s=timeout_s,
        what=f"{len(expected)} inputs at the destination",
    )


@pytest.mark.parametrize(
    "command",
    [
        ["worker", "--broker", "kafka://127.0.0.1:1"],
        ["control", "serve", "--broker", "kafka://127.0.0.1:1", "--auth-url", "http://127.0.0.1:1"],
        ["secrets", "rotate", "--broker", "kafka://127.0.0.1:1"],
    ],
)
def test_start_is_refused_without_a_secret(command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (ENV_SECRET, "COLLECTORS_SECRET_KEY_FILE")}
    done = subprocess.run(
        [sys.executable, "-m", "streams", *command], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "collectors secrets generate" in done.stderr and ENV_SECRET in done.stderr, done.stderr


async def test_rotation_while_a_worker_posts_and_clear_records_migrated(
    tmp_path: Path,
    kafka: LocalKafka,
    topic_factory,
    producer_factory,
    destination_factory,
    worker_factory,
    control_apis: ControlApis,
) -> None:
    old, new = generate_secret(), generate_secret()
    destination = destination_factory()
    post_key, legacy_key = new_key(destination, "kpst"), new_key(destination, "klgc")
    running = control_apis.start(destination, env={ENV_SECRET: old})
    api = running.client(new_key(destination, "ownr", app_id=None))
    predictions = await topic_factory("predictions")
    body = collector_body("all", destination.url, post_key, pre_queue_random_sample=1.0)
    api.create("collectors", USER, APP, [body])

    # A record in clear, as an earlier version wrote it: read, and posted for, as it is.
    legacy = collector_body("legacy", destination.url, legacy_key, pre_queue_random_sample=0.5)
    legacy["destination"] |= {"user_id": USER, "app_id": APP}
    clear_record = {
        "kind": "collector",
        "user_id": USER,
        "app_id": APP,
        "collector": legacy,
        "created_at": utc_now(),
        "modified_at": utc_now(),
    }
    writer = ControlWriter(kafka.bootstrap_servers, running.topic)
    await writer.start()
    await writer.put(collector_key(USER, APP, "legacy"), clear_record)
    await writer.stop()

    # The workers know both secrets, the new one first; the stored key was sealed with the old one.
    worker = worker_factory(empty_config(tmp_path), env={ENV_SECRET: f"{new},{old}"})
    wait_listed([worker], lambda state: len(state) == 2, timeout_s=30, what="both collectors")
    batch1 = event_lines(300, start=1, seed=91)
    await producer_factory(predictions, batch1)
    expected1 = await predicted_ids(tmp_path, [body, legacy], batch1)
    wait_stored(destination, expected1)

    rotate = ["secrets", "rotate", "--broker", kafka.bootstrap_servers, "--control-topic", running.topic]
    rotated = await invoke(main, rotate, {ENV_SECRET: f"{new},{old}"})
    assert rotated.exit_code == 0, rotated.output
    assert "2 key(s) re-sealed with the newest secret, 0 already current" in rotated.output
    state = await control_state(kafka.bootstrap_servers, running.topic)
    only_new = SecretBox([new])
    for name, key in (("all", post_key), ("legacy", legacy_key)):
        record = state[collector_key(USER, APP, name)]
        assert key not in orjson.dumps(record).decode()
        assert SEALED_FIELD in record["collector"]["destination"]  # type: ignore[index]
        assert open_document(record, only_new)["collector"]["destination"]["key"] == key  # type: ignore[arg-type]

    again = await invoke(main, rotate, {ENV_SECRET: f"{new},{old}"})
    assert again.exit_code == 0 and "0 key(s) re-sealed with the newest secret, 2 already current" in again.output

    # The worker kept running through the rotation and keeps posting.
    batch2 = event_lines(300, start=1001, seed=92)
    await producer_factory(predictions, batch2)
    expected2 = await predicted_ids(tmp_path, [body, legacy], batch2)
    wait_stored(destination, expected1 | expected2)
    snapshot = wait_settled([worker], events=len(batch1) + len(batch2), timeout_s=60)
    assert funnel(snapshot, f"{USER}/{APP}/all").get("dead_lettered", 0) == 0
    assert sorted(destination.input_ids(USER, APP)) == sorted(expected1 | expected2)
    assert listed(worker)[f"{USER}/{APP}/legacy"]["last_error"] is None


async def test_the_api_seals_a_clear_record_on_its_next_write(
    kafka: LocalKafka, destination_factory, control_apis: ControlApis
) -> None:
    destination = destination_factory()
    legacy_key = new_key(destination, "klgc")
    running = control_apis.start(destination)
    api = running.client(new_key(destination, "ownr", app_id=None))
    legacy = collector_body("legacy", destination.url, legacy_key, pre_queue_random_sample=0.5)
    record = {
        "kind": "collector",
        "user_id": USER,
        "app_id": APP,
        "collector": legacy | {"destination": legacy["destination"] | {"user_id": USER, "app_id": APP}},
        "created_at": utc_now(),
        "modified_at": utc_now(),
    }
    writer = ControlWriter(kafka.bootstrap_servers, running.topic)
    await writer.start()
    await writer.put(collector_key(USER, APP, "legacy"), record)
    await writer.stop()
    wait_for(lambda: bool(api.list_all("collectors", USER, APP)), timeout_s=30, what="the API to read the record")
    unchanged = collector_body("legacy", destination.url, None, pre_queue_random_sample=0.5)
    [shown] = api.overwrite("collectors", USER, APP, [unchanged])
    assert shown["destination"]["key"] == legacy_key[:4] + "…"
    state = await control_state(kafka.bootstrap_servers, running.topic)
    assert legacy_key not in orjson.dumps(state).decode()


async def test_a_wrong_secret_blocks_the_collector_and_loses_nothing(
    tmp_path: Path,
    kafka: LocalKafka,
    unique: str,
    topic_factory,
    producer_factory,
    destination_factory,
    worker_factory,
    control_apis: ControlApis,
) -> None:
    right, wrong = generate_secret(), generate_secret()
    destination = destination_factory()
    running = control_apis.start(destination, env={ENV_SECRET: right})
    api = running.client(new_key(destination, "ownr", app_id=None))
    predictions = await topic_factory("predictions")
    body = collector_body("half", destination.url, new_key(destination, "kpst"), pre_queue_random_sample=0.5)
    api.create("collectors", USER, APP, [body])
    worker = worker_factory(empty_config(tmp_path), env={ENV_SECRET: wrong})
    collector_id = f"{USER}/{APP}/half"
    wait_listed([worker], lambda state: collector_id in state, timeout_s=30, what="the collector")

    batch = event_lines(400, start=1, seed=93)
    await producer_factory(predictions, batch)
    expected = await predicted_ids(tmp_path, [body], batch)
    snapshot = wait_settled([worker], events=len(batch), timeout_s=60)
    shown = listed(worker)[collector_id]
    assert "cannot be decrypted" in shown["last_error"] and ENV_SECRET in shown["last_error"], shown
    counts = funnel(snapshot, collector_id)
    assert counts["queued"] == len(expected) and counts["dead_lettered"] == len(expected), counts
    assert destination.input_ids(USER, APP) == []
    letters = await read_topic(kafka.bootstrap_servers, f"{unique}-dead-letters", expect=len(expected))
    assert {letter["input"]["id"] for letter in letters} == expected
    assert all(letter["replayable"] and letter["reason"] == "collector_paused" for letter in letters)
    assert api.get("collectors", USER, APP, "half")["status"]["code"] == 52001, "other workers are not paused"

    # With the right secret the waiting inputs are posted: nothing was lost.
    replay = ["dlq", "replay", "--broker", kafka.bootstrap_servers, "--topic", f"{unique}-dead-letters"]
    replay += ["--control-topic", running.topic, "--collector", collector_id]
    replayed = await invoke(main, replay, {ENV_SECRET: right})
    assert replayed.exit_code == 0, replayed.output
    assert sorted(destination.input_ids(USER, APP)) == sorted(expected)


async def test_a_destination_outside_the_allow_list_receives_nothing(
    tmp_path: Path,
    kafka: LocalKafka,
    unique: str,
    topic_factory,
    producer_factory,
    destination_factory,
    worker_factory,
    control_apis: ControlApis,
) -> None:
    destination = destination_factory()
    post_key = new_key(destination, "kpst")
    running = control_apis.start(destination)
    api = running.client(new_key(destination, "ownr", app_id=None))
    predictions = await topic_factory("predictions")
    async with recording_server() as elsewhere:
        # The API refuses it before asking anything of it.
        with pytest.raises(ApiError) as refused:
            api.create(
                "collectors", USER, APP, [collector_body("out", elsewhere.url, post_key, pre_queue_random_sample=1.0)]
            )
        assert refused.value.http_status == 403
        assert "30103" in str(refused.value) and "--allowed-destination" in str(refused.value), str(refused.value)
        assert elsewhere.requests == []

        # A record written to the topic behind the API's back (tampered) is refused by the workers too.
        body = collector_body("out", elsewhere.url, post_key, pre_queue_random_sample=1.0)
        body["destination"] |= {"user_id": USER, "app_id": APP}
        tampered = {
            "kind": "collector",
            "user_id": USER,
            "app_id": APP,
            "collector": body,
            "created_at": utc_now(),
            "modified_at": utc_now(),
        }
        writer = ControlWriter(kafka.bootstrap_servers, running.topic)
        await writer.start()
        await writer.put(collector_key(USER, APP, "out"), tampered)
        await writer.stop()
        worker = worker_factory(empty_config(tmp_path), env={"COLLECTORS_ALLOWED_DESTINATIONS": destination.url})
        collector_id = f"{USER}/{APP}/out"
        wait_listed([worker], lambda state: collector_id in state, timeout_s=30, what="the collector")
        batch = event_lines(100, start=1, seed=94)
        await producer_factory(predictions, batch)
        snapshot = wait_settled([worker], events=len(batch), timeout_s=60)
        counts = funnel(snapshot, collector_id)
        assert counts["queued"] > 0 and counts["dead_lettered"] == counts["queued"], counts
        assert "not an allowed destination" in listed(worker)[collector_id]["last_error"]
        assert elsewhere.requests == []
