"""Collectors managed through the management API (a process of its own) change what real, running workers
do: created, overwritten, paused, resumed, deleted and applied while the workers run, never restarted.

Every test runs the real broker, the reference destination as a process, the API as a process on the test's
control topic, and workers with no static collector (an empty configuration file)."""

from __future__ import annotations

import orjson
import pytest

from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import Service, combined_ledger, wait_settled, worker_stats
from streams.tools.manage.commands import control
from tests.conftest import write_config
from tests.e2e.management_support import (
    APP,
    MODEL,
    USER,
    collector_body,
    empty_config,
    event_lines,
    funnel,
    invoke,
    listed,
    new_key,
    predicted_ids,
    stop_together,
    topic_end,
    wait_listed,
    wait_ready,
)
from tests.faults.conftest import SLOW_POSTING, assert_balanced, assert_exactly_once, set_faults, wait_for

pytestmark = pytest.mark.kafka

PICK_UP_S = 10  # a change written through the API reaches every running worker within this
# Small requests, so a deletion arrives while many of the deleted collector's inputs are still queued.
ONE_REQUEST_IN_FLIGHT = {**SLOW_POSTING, "COLLECTORS_POST_BATCH_SIZE": "16", "COLLECTORS_POST_CONCURRENCY": "1"}


def _alive(workers: list[Service]) -> None:
    for worker in workers:
        assert worker.process.poll() is None, f"worker {worker.url} exited: {worker.log_tail()}"


async def test_change_through_api_reaches_two_running_workers(
    tmp_path,
    kafka: LocalKafka,
    unique,
    topic_factory,
    producer_factory,
    destination_factory,
    worker_factory,
    control_apis,
) -> None:
    destination = destination_factory()
    post_key = destination.add_app(USER, APP)
    api = control_apis.start(destination).client(new_key(destination, "ownr", app_id=None))
    predictions = await topic_factory("predictions")
    config = empty_config(tmp_path)
    workers = [worker_factory(config), worker_factory(config)]
    pids = [w.process.pid for w in workers]
    wait_ready(workers)
    assert [listed(w) for w in workers] == [{}, {}], "no collector yet"

    first = collector_body("sampled", destination.url, post_key, pre_queue_random_sample=0.2)
    [stored] = api.create("collectors", USER, APP, [first])
    assert stored["status"]["code"] == 52001 and stored["destination"]["key"] == f"{post_key[:4]}…"
    took = wait_listed(
        workers, lambda state: "ann/pets/sampled" in state, timeout_s=PICK_UP_S, what="both workers to load it"
    )
    print(f"both workers loaded the new collector {took:.1f}s after the API stored it")

    batch1 = event_lines(400, start=1, seed=41)
    await producer_factory(predictions, batch1)
    wait_settled(workers, events=len(batch1), timeout_s=60)
    expected1 = await predicted_ids(tmp_path, [first], batch1)
    assert 40 < len(expected1) < 120, "a fifth of 400"
    assert_exactly_once(destination, expected1)
    before = {item.input_id: (item.data, item.created_at) for item in destination.inputs(USER, APP)}

    # Overwrite the rule: keep everything. The stored key is kept (PATCH without destination.key).
    second = collector_body("sampled", destination.url, None, pre_queue_random_sample=1.0)
    [patched] = api.overwrite("collectors", USER, APP, [second])
    assert patched["pre_queue_random_sample"] == 1.0 and patched["created_at"] == stored["created_at"]
    assert patched["destination"]["key"] == f"{post_key[:4]}…", "the stored key was kept"
    # The control topic is read in order: once a collector written after the overwrite is loaded, so is it.
    canary = {**MODEL, "model_id": "no-such-model"}
    api.create(
        "collectors",
        USER,
        APP,
        [{**collector_body("canary", destination.url, post_key, pre_queue_random_sample=1.0), "source": canary}],
    )
    took = wait_listed(workers, lambda state: "ann/pets/canary" in state, timeout_s=PICK_UP_S, what="the overwrite")
    print(f"both workers applied the overwrite within {took:.1f}s")

    batch2 = event_lines(300, start=1001, seed=42)
    await producer_factory(predictions, batch2)
    snapshot = wait_settled(workers, events=len(batch1) + len(batch2), timeout_s=60)
    expected2 = await predicted_ids(tmp_path, [second], batch2)
    assert len(expected2) == len(batch2), "the new rule keeps every event"
    assert_exactly_once(destination, expected1 | expected2)
    after = {item.input_id: (item.data, item.created_at) for item in destination.inputs(USER, APP)}
    assert {i: after[i] for i in before} == before, "the first batch's inputs are unchanged"
    assert funnel(snapshot, "ann/pets/sampled")["posted"] == len(expected1) + len(expected2)
    assert_balanced(snapshot, len(batch1) + len(batch2))
    assert all(worker_stats(w)["events"].get("events", 0) > 0 for w in workers), "both workers selected events"
    _alive(workers)
    assert [w.process.pid for w in workers] == pids, "no worker was restarted"
    stop_together(workers)


async def test_pause_stops_queueing_and_resume_restarts_it(
    tmp_path, unique, topic_factory, producer_factory, destination_factory, worker_factory, control_apis
) -> None:
    destination = destination_factory()
    post_key = destination.add_app(USER, APP)
    running = control_apis.start(destination)
    owner = new_key(destination, "ownr", app_id=None)
    api = running.client(owner)
    predictions = await topic_factory("predictions")
    worker = worker_factory(empty_config(tmp_path))
    body = collector_body("halves", destination.url, post_key, pre_queue_random_sample=0.5)
    api.create("collectors", USER, APP, [body])
    wait_listed([worker], lambda state: "ann/pets/halves" in state, timeout_s=PICK_UP_S, what="the collector")

    batch1 = event_lines(200, start=1, seed=51)
    await producer_factory(predictions, batch1)
    wait_settled([worker], events=200, timeout_s=60)
    expected1 = await predicted_ids(tmp_path, [body], batch1)
    assert_exactly_once(destination, expected1)

    paused = await invoke(control, ["pause", "halves"], running.cli_env(owner))
    assert paused.exit_code == 0, paused.output
    assert "paused" in paused.output
    wait_listed(
        [worker], lambda state: state["ann/pets/halves"]["status"] == "paused", timeout_s=PICK_UP_S, what="pause"
    )
    assert api.get("collectors", USER, APP, "halves")["last_error"] is None, "paused by its owner, not by an error"

    batch2 = event_lines(200, start=1001, seed=52)
    await producer_factory(predictions, batch2)
    snapshot = wait_settled([worker], events=400, timeout_s=60)
    counts = funnel(snapshot, "ann/pets/halves")
    assert counts["paused"] == len(batch2), "every event of the model is counted paused"
    assert counts["queued"] == counts["posted"] == len(expected1), "nothing queued or posted while paused"
    assert_exactly_once(destination, expected1)

    resumed = await invoke(control, ["resume", "halves"], running.cli_env(owner))
    assert resumed.exit_code == 0, resumed.output
    wait_listed(
        [worker], lambda state: state["ann/pets/halves"]["status"] == "active", timeout_s=PICK_UP_S, what="resume"
    )
    batch3 = event_lines(200, start=2001, seed=53)
    await producer_factory(predictions, batch3)
    snapshot = wait_settled([worker], events=600, timeout_s=60)
    expected3 = await predicted_ids(tmp_path, [body], batch3)
    # Resuming starts from the current position: what arrived while paused is not collected later.
    assert_exactly_once(destination, expected1 | expected3)
    counts = funnel(snapshot, "ann/pets/halves")
    assert counts["paused"] == len(batch2)
    assert counts["posted"] == len(expected1) + len(expected3)
    assert_balanced(snapshot, 600)


async def test_delete_drops_what_was_queued(
    tmp_path, unique, topic_factory, producer_factory, destination_factory, worker_factory, control_apis
) -> None:
    destination = destination_factory(faults=True)
    post_key = destination.add_app(USER, APP)
    api = control_apis.start(destination).client(new_key(destination, "ownr", app_id=None))
    predictions = await topic_factory("predictions")
    worker = worker_factory(empty_config(tmp_path), env=ONE_REQUEST_IN_FLIGHT)
    doomed = collector_body("doomed", destination.url, post_key, pre_queue_random_sample=1.0)
    kept = collector_body("kept", destination.url, post_key, pre_queue_random_sample=0.3)
    api.create("collectors", USER, APP, [doomed, kept])
    wait_listed([worker], lambda state: len(state) == 2, timeout_s=PICK_UP_S, what="both collectors")

    await set_faults(destination, down=True)  # MyScopes still answers: the API keeps working
    lines = event_lines(300, start=1, seed=61)
    await producer_factory(predictions, lines)
    wait_for(
        lambda: combined_ledger([worker]).collectors["ann/pets/doomed"].get("queued", 0) == len(lines),
        timeout_s=60,
        what="every event queued for the deleted collector",
    )
    assert destination.input_ids(USER, APP) == []

    assert api.delete("collectors", USER, APP, ["doomed"]) == ["doomed"]
    wait_listed([worker], lambda state: "ann/pets/doomed" not in state, timeout_s=PICK_UP_S, what="the deletion")
    await set_faults(destination)
    snapshot = wait_settled([worker], events=len(lines), timeout_s=60)

    counts = funnel(snapshot, "ann/pets/doomed")
    expected_kept = await predicted_ids(tmp_path, [kept], lines)
    # Every request is judged again before each attempt: none of the deleted collector's inputs was posted,
    # though its requests were being retried when it was deleted.
    assert set(destination.input_ids(USER, APP)) == expected_kept
    assert counts.get("posted", 0) == 0, counts
    assert counts["dropped"] == len(lines), counts
    assert_exactly_once(destination, expected_kept)
    assert funnel(snapshot, "ann/pets/kept")["posted"] == len(expected_kept), "the other collector is unaffected"
    assert_balanced(snapshot, len(lines))
    assert api.list_all("collectors", USER, APP)[0]["id"] == "kept"


async def test_apply_is_idempotent_against_running_workers(
    tmp_path,
    kafka: LocalKafka,
    unique,
    topic_factory,
    producer_factory,
    destination_factory,
    worker_factory,
    control_apis,
) -> None:
    destination = destination_factory()
    post_key = destination.add_app(USER, APP)
    running = control_apis.start(destination)
    owner = new_key(destination, "ownr", app_id=None)
    predictions = await topic_factory("predictions")
    config = empty_config(tmp_path)
    workers = [worker_factory(config), worker_factory(config)]
    where = {"base_url": destination.url, "user_id": USER, "app_id": APP, "key_env": "TEST_PETS_KEY"}
    document = {
        "collectors": [
            {"id": "third", "source": MODEL, "destination": where, "pre_queue_random_sample": 0.33},
            {
                "id": "bob-half",
                "source": {**MODEL, "caller_user_id": "bob"},
                "destination": where,
                "pre_queue_workflow_id": "half",
            },
        ],
        "workflows": [{"id": "half", "nodes": [{"operator": "random_sample", "keep_fraction": 0.5}]}],
    }
    path = write_config(tmp_path / "managed.yaml", document)
    env = running.cli_env(owner, TEST_PETS_KEY=post_key)

    first = await invoke(control, ["apply", "-f", str(path), "--json"], env)
    assert first.exit_code == 0, first.output
    outcomes = {(r["kind"], r["id"]): r["outcome"] for r in orjson.loads(first.stdout)["results"]}
    assert outcomes == {
        ("workflow", "half"): "created",
        ("collector", "third"): "created",
        ("collector", "bob-half"): "created",
    }
    wait_listed(workers, lambda state: len(state) == 2, timeout_s=PICK_UP_S, what="both collectors on both workers")
    batch1 = event_lines(300, start=1, seed=71)
    await producer_factory(predictions, batch1)
    wait_settled(workers, events=len(batch1), timeout_s=60)

    client = running.client(owner)
    stored = client.list_all("collectors", USER, APP), client.list_all("workflows", USER, APP)
    written = await topic_end(kafka.bootstrap_servers, running.topic)
    seen_by_workers = [listed(w) for w in workers]

    second = await invoke(control, ["apply", "-f", str(path), "--json"], env)
    assert second.exit_code == 0, second.output
    outcomes = {(r["kind"], r["id"]): r["outcome"] for r in orjson.loads(second.stdout)["results"]}
    assert set(outcomes.values()) == {"unchanged"}, outcomes
    table = await invoke(control, ["apply", "-f", str(path)], env)
    assert table.exit_code == 0 and table.output.count("unchanged") == 3, table.output

    assert (client.list_all("collectors", USER, APP), client.list_all("workflows", USER, APP)) == stored
    assert await topic_end(kafka.bootstrap_servers, running.topic) == written, (
        "nothing was written to the control topic"
    )
    assert [listed(w) for w in workers] == seen_by_workers
    _alive(workers)

    batch2 = event_lines(300, start=1001, seed=72)
    await producer_factory(predictions, batch2)
    snapshot = wait_settled(workers, events=len(batch1) + len(batch2), timeout_s=60)
    expected = await predicted_ids(tmp_path, document["collectors"], batch1 + batch2, document["workflows"])
    assert_exactly_once(destination, expected)
    assert all(counts.get("duplicate", 0) == 0 for counts in snapshot["collectors"].values())
    assert_balanced(snapshot, len(batch1) + len(batch2))
    stop_together(workers)
