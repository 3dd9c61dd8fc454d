"""The worker's Prometheus metrics (``GET /metrics``): each collector's funnel, the worker's events, its
requests to destinations, what it holds, and its consumer lag.

The funnel counters come from the ledgers, as what this process counted since it started
(:meth:`PartitionLedgers.counted_here`): they only grow, whatever partitions move between workers, and
summed over the workers of an app id since their start they equal ``collectors stats``. Labels are bounded
by the deployment: collector ids, operator labels, reasons, HTTP status codes, topics and partitions;
never input ids or keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.core import ledger as outcome
from streams.core.ledger import Ledger
from streams.worker.faust_private import committed_offset
from streams.worker.runtime import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FUNNEL_COUNTERS: dict[str, tuple[str, str]] = {
    outcome.SEEN: ("collectors_collector_seen", "Events of the collector's model the collector saw."),
    outcome.QUEUED: ("collectors_collector_queued", "Inputs the collector put on the queue topic."),
    outcome.POSTED: ("collectors_collector_posted", "Inputs the destination stored."),
    outcome.DUPLICATE: ("collectors_collector_duplicates", "Inputs the destination held already (redelivery)."),
    outcome.DEAD_LETTERED: ("collectors_collector_dead_lettered", "Queued inputs sent to the dead-letter topic."),
    outcome.DROPPED: ("collectors_collector_dropped", "Queued inputs dropped because the collector was deleted."),
    outcome.PAUSED: ("collectors_collector_paused_events", "Events the collector saw while paused (not queued)."),
    outcome.OPERATOR_ERRORS: ("collectors_collector_operator_errors", "Events an operator failed on."),
}
REQUEST_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 96, 128)


class WorkerMetrics:
    """The metrics of one worker process, in a registry of their own; :meth:`exposition` renders them."""

    def __init__(self, runtime: Runtime, app: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "collectors_destination_requests",
            "Requests to destinations, by outcome (ok, refused, throttled, server_error, unreachable) and HTTP code.",
            ["outcome", "code"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "collectors_destination_request_seconds",
            "Time from sending a request to a destination to its whole answer.",
            buckets=REQUEST_SECONDS,
            registry=self.registry,
        )
        self.batch_inputs = Histogram(
            "collectors_destination_batch_inputs",
            "Inputs carried by one request to a destination.",
            buckets=BATCH_SIZES,
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "collectors_dead_letters",
            "Records written to the dead-letter topic, by collector ('' for events no collector could read) and"
            " reason.",
            ["collector", "reason"],
            registry=self.registry,
        )
        self.registry.register(_FromRuntime(runtime, app))
        runtime.poster.on_request = self.observe_request
        runtime.on_dead_letter = self.observe_dead_letter

    def observe_request(self, http_status: int | None, seconds: float, size: int) -> None:
        """One request to a destination: its outcome, latency and size."""
        self.requests.labels(request_outcome(http_status), "none" if http_status is None else str(http_status)).inc()
        self.request_seconds.observe(seconds)
        self.batch_inputs.observe(size)

    def observe_dead_letter(self, value: bytes) -> None:
        """A record written to the dead-letter topic (a dead letter as :mod:`streams.core.dead_letters` builds)."""
        letter = orjson.loads(value)
        self.dead_letters.labels(letter.get("collector_id") or "", letter.get("reason") or "unknown").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def request_outcome(http_status: int | None) -> str:
    if http_status is None:
        return "unreachable"
    if http_status == 429:
        return "throttled"
    if http_status >= 500:
        return "server_error"
    return "ok" if http_status < 300 else "refused"


class _FromRuntime(Collector):
    """What is read at scrape time: the funnels counted here, gauges, and the consumer's lag."""

    def __init__(self, runtime: Runtime, app: Any) -> None:
        self.runtime = runtime
        self.app = app

    def collect(self) -> Iterator[Metric]:
        runtime = self.runtime
        counted = Ledger()
        caught_up = 0
        for ledgers in runtime.ledgers.values():
            counted.add_difference(ledgers.counted_here(), Ledger())
            caught_up += ledgers.caught_up
        yield from _funnels(counted)
        yield from _collector_gauges(runtime)
        posting, events = runtime.posting, counted.events
        counters = {
            "collectors_events_read": ("Prediction events read.", events[outcome.EVENTS]),
            "collectors_events_decoded": ("Events that met the contract.", events[outcome.DECODED]),
            "collectors_events_invalid": ("Events dead-lettered undecoded.", events[outcome.INVALID]),
            "collectors_events_unmatched": ("Events of models no collector watches.", events[outcome.UNMATCHED]),
            "collectors_destination_retries": ("Requests retried after a transient failure.", runtime.poster.retries),
            "collectors_catch_up_records": ("Records read again to catch up with a ledger.", caught_up),
            "collectors_control_changes": ("Changes of the control topic applied.", runtime.control_changes),
        }
        gauges = {
            "collectors_posting_held_records": ("Queue records held for fuller batches.", posting.get("held", 0)),
            "collectors_posting_requests_in_flight": ("Requests under way.", posting.get("in_flight", 0)),
            "collectors_worker_ready": ("1 once the control topic was read.", int(runtime.ready.is_set())),
        }
        for name, (text, value) in counters.items():
            yield CounterMetricFamily(name, text, value=value)
        for name, (text, value) in gauges.items():
            yield GaugeMetricFamily(name, text, value=value)
        yield self._lag()

    def _lag(self) -> Metric:
        lag = GaugeMetricFamily(
            "collectors_consumer_lag",
            "Records of an assigned partition not yet committed: end offset minus committed offset.",
            labels=["topic", "partition"],
        )
        consumer = self.app.consumer
        watched = {self.runtime.settings.predictions_topic, self.runtime.settings.queue_topic}
        for tp in sorted(consumer.assignment()):
            if tp.topic in watched:
                end = consumer.highwater(tp)
                if end is not None:
                    lag.add_metric([tp.topic, str(tp.partition)], max(0, end - (committed_offset(consumer, tp) or 0)))
        return lag


def _funnels(counted: Ledger) -> Iterator[Metric]:
    families = {
        name: CounterMetricFamily(metric, text, labels=["collector"])
        for name, (metric, text) in FUNNEL_COUNTERS.items()
    }
    out = CounterMetricFamily(
        "collectors_collector_out",
        "Candidates a step stopped, by collector and the step's label (operator, with its workflow when named)"
        " and stage (pre: before the queue, post: after it).",
        labels=["collector", "operator", "stage"],
    )
    for cid, counts in sorted(counted.collectors.items()):
        for name, family in families.items():
            family.add_metric([cid], counts[name])
        for name, n in counts.items():
            if name.startswith(outcome.FILTERED_PREFIX):
                out.add_metric([cid, name.removeprefix(outcome.FILTERED_PREFIX), "pre"], n)
            elif name.startswith(outcome.POST_FILTERED_PREFIX):
                out.add_metric([cid, name.removeprefix(outcome.POST_FILTERED_PREFIX), "post"], n)
    yield from families.values()
    yield out


def _collector_gauges(runtime: Runtime) -> Iterator[Metric]:
    paused = GaugeMetricFamily("collectors_collector_paused", "1 while the collector is paused.", labels=["collector"])
    for collector in runtime.index:
        paused.add_metric([collector.id], 0 if collector.active else 1)
    yield paused
    last_post = GaugeMetricFamily(
        "collectors_collector_last_post_timestamp_seconds",
        "When (Unix time) the destination last stored an input of the collector posted by this worker.",
        labels=["collector"],
    )
    for cid, at in sorted(runtime.last_posted_at.items()):
        last_post.add_metric([cid], at)
    yield last_post
