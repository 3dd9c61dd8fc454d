"""``GET /metrics`` of the worker and of the management API: the names, bounded labels, and per-collector
counts equal to the ledger that ``collectors stats`` reads."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from streams.core import ledger as outcome
from streams.kafka.ledgers import from_changelogs
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import wait_settled
from streams.tools.manage.client import ApiError, ControlClient
from streams.tools.samples.generate import events
from tests.e2e.management_support import APP, USER, new_key
from tests.faults.conftest import set_faults
from tests.operations.support import config

from .support import Samples, scrape, start_control_api, value

pytestmark = pytest.mark.kafka

WORKER_METRICS = {
    "collectors_collector_seen_total",
    "collectors_collector_out_total",
    "collectors_collector_queued_total",
    "collectors_collector_posted_total",
    "collectors_collector_duplicates_total",
    "collectors_collector_dead_lettered_total",
    "collectors_collector_dropped_total",
    "collectors_collector_paused_events_total",
    "collectors_collector_operator_errors_total",
    "collectors_collector_paused",
    "collectors_collector_last_post_timestamp_seconds",
    "collectors_dead_letters_total",
    "collectors_events_read_total",
    "collectors_events_decoded_total",
    "collectors_events_invalid_total",
    "collectors_events_unmatched_total",
    "collectors_destination_requests_total",
    "collectors_destination_request_seconds_bucket",
    "collectors_destination_batch_inputs_bucket",
    "collectors_destination_retries_total",
    "collectors_posting_held_records",
    "collectors_posting_requests_in_flight",
    "collectors_consumer_lag",
    "collectors_catch_up_records_total",
    "collectors_control_changes_total",
    "collectors_worker_ready",
}
API_METRICS = {"collectors_api_calls_total", "collectors_api_call_seconds_bucket", "collectors_api_key_checks_total"}
GROUP_METRICS = {"collectors_group_lag", "collectors_group_dead_letters"}
"""The management API's view of the workers' group (checked with a running worker by the page's test)."""
BOUNDED_LABELS = {"collector", "operator", "stage", "reason", "outcome", "code", "topic", "partition", "le"}
FUNNEL = {
    outcome.SEEN: "collectors_collector_seen_total",
    outcome.QUEUED: "collectors_collector_queued_total",
    outcome.POSTED: "collectors_collector_posted_total",
    outcome.DUPLICATE: "collectors_collector_duplicates_total",
    outcome.DEAD_LETTERED: "collectors_collector_dead_lettered_total",
    outcome.DROPPED: "collectors_collector_dropped_total",
}


def funnel_of(samples: Samples, cid: str) -> dict[str, float]:
    """A collector's funnel as the metrics tell it, in the ledger's names (zeros left out, as the ledger does)."""
    counts = {name: value(samples, metric, collector=cid) for name, metric in FUNNEL.items()}
    for (name, labels), n in samples.items():
        found = dict(labels)
        if name == "collectors_collector_out_total" and found["collector"] == cid:
            prefix = outcome.FILTERED_PREFIX if found["stage"] == "pre" else outcome.POST_FILTERED_PREFIX
            counts[prefix + found["operator"]] = n
    return {name: n for name, n in counts.items() if n}


def consumer_lag(samples: Samples) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["topic"], dict(labels)["partition"]): n
        for (name, labels), n in samples.items()
        if name == "collectors_consumer_lag"
    }


async def test_worker_metrics_agree_with_the_ledger(
    tmp_path, kafka: LocalKafka, topic_factory, producer_factory, destination_factory, worker_factory, unique
) -> None:
    destination = destination_factory(faults=True)
    key = destination.add_app("ann", "pets")
    await set_faults(destination, error_rate=0.3, error_status=503, seed=7)  # some requests retried
    predictions = await topic_factory("predictions")
    await topic_factory("queue")
    lines = [orjson.dumps(e) for e in events(400, seed=5)] + [b"not json", b'{"id": "no-output"}']
    await producer_factory(predictions, lines)
    worker = worker_factory(
        config(tmp_path / "collectors.yaml", destination.url),
        env={"TEST_PETS_KEY": key, "COLLECTORS_RETRY_MAX_BACKOFF_S": "0.5", "COLLECTORS_POST_BATCH_SIZE": "16"},
    )
    settled = wait_settled([worker], events=len(lines), timeout_s=120)

    ledger = None
    for _ in range(50):  # the changelog holds the last batch's ledger once the producer flushed it
        ledger, _missing = await from_changelogs(kafka.bootstrap_servers, unique)
        if ledger.snapshot() == settled:
            break
        await asyncio.sleep(0.2)
    assert ledger is not None and ledger.snapshot() == settled
    samples = scrape(worker.url)

    assert {name for name, _ in samples} >= WORKER_METRICS
    for name, labels in samples:
        assert {label for label, _ in labels} <= BOUNDED_LABELS, name
        for label, text in labels:
            assert not text.startswith(("evt-", key[:8])), f"{name} has an unbounded label {label}={text}"
    assert set(ledger.collectors) == {"ann/pets/quarter", "ann/pets/bob-all"}
    for cid, counts in ledger.collectors.items():
        assert funnel_of(samples, cid) == {k: n for k, n in counts.items() if n}, cid
        assert value(samples, "collectors_collector_paused", collector=cid) == 0
        assert value(samples, "collectors_collector_last_post_timestamp_seconds", collector=cid) > 0
    assert (
        value(
            samples,
            "collectors_collector_out_total",
            collector="ann/pets/quarter",
            operator="random_sample",
            stage="pre",
        )
        > 0
    )
    assert value(samples, "collectors_events_read_total") == ledger.events[outcome.EVENTS] == len(lines)
    assert value(samples, "collectors_events_decoded_total") == ledger.events[outcome.DECODED] == len(lines) - 2
    assert value(samples, "collectors_events_invalid_total") == 2
    reasons = {
        dict(labels)["reason"]: n for (name, labels), n in samples.items() if name == "collectors_dead_letters_total"
    }
    assert sum(reasons.values()) == 2 and all(reason != "unknown" for reason in reasons), reasons

    posted = sum(counts[outcome.POSTED] + counts[outcome.DUPLICATE] for counts in ledger.collectors.values())
    ok = value(samples, "collectors_destination_requests_total", outcome="ok", code="200")
    failed = value(samples, "collectors_destination_requests_total", outcome="server_error", code="503")
    assert ok > 0 and failed > 0
    assert value(samples, "collectors_destination_retries_total") == failed
    assert value(samples, "collectors_destination_batch_inputs_sum") >= posted
    assert value(samples, "collectors_destination_request_seconds_count") == ok + failed
    lags = consumer_lag(samples)
    assert {topic for topic, _ in lags} == {predictions, f"{unique}-queue"} and len(lags) == 8
    assert sum(lags.values()) <= len(lines) * 2  # what is read but not committed yet; Faust commits in a moment
    for _ in range(100):
        if not any(consumer_lag(scrape(worker.url)).values()):
            break
        await asyncio.sleep(0.3)
    assert consumer_lag(scrape(worker.url)) == dict.fromkeys(lags, 0.0)

    # Counters only grow: a second scrape, with nothing new, reads the same counts.
    again = scrape(worker.url)
    for cid in ledger.collectors:
        assert funnel_of(again, cid) == funnel_of(samples, cid)


async def test_management_api_counts_calls_and_key_checks(
    tmp_path, kafka: LocalKafka, destination_factory, unique
) -> None:
    destination = destination_factory()
    api = start_control_api(f"kafka://{kafka.bootstrap_servers}", unique, destination.url, tmp_path / "api.log")
    try:
        owner = new_key(destination, "ownr", app_id=None)
        client = ControlClient(api.url, owner, timeout_s=30)
        stranger = ControlClient(api.url, "nobody-knows-this-key", timeout_s=30)
        assert (await asyncio.to_thread(client.list_all, "collectors", USER, APP)) == []
        with pytest.raises(ApiError) as refused:
            await asyncio.to_thread(stranger.list_all, "collectors", USER, APP)
        assert refused.value.http_status == 401
        samples = scrape(api.url)
        assert value(samples, "collectors_api_calls_total", method="GET", code="200") >= 1
        assert value(samples, "collectors_api_calls_total", method="GET", code="401") == 1
        assert value(samples, "collectors_api_key_checks_total", outcome="ok") == 1
        assert value(samples, "collectors_api_key_checks_total", outcome="unknown") == 1
        assert value(samples, "collectors_api_call_seconds_count") >= 2
        assert {name for name, _ in samples} >= API_METRICS
        for name, labels in samples:
            assert {label for label, _ in labels} <= {"method", "code", "outcome", "le"}, name
        assert {name for name, _ in samples}.isdisjoint(GROUP_METRICS)  # no worker ever ran: no partitions yet
    finally:
        api.stop()
