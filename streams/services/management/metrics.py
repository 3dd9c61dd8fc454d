"""The management API's Prometheus metrics: calls by method and status code, key checks by outcome.

Labels are bounded: HTTP methods, status codes and the handful of key-check outcomes (never a path, which
holds user and app ids, nor a key).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
KeyCheck = Literal["ok", "missing", "unknown", "other_app", "unknown_app", "unreachable"]
KNOWN_METHODS = frozenset({"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"})
_KEY_CHECK = web.RequestKey("collectors_key_check", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiMetrics:
    """The API's counters, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "collectors_api_calls",
            "Calls to the management API, by HTTP method and status code.",
            ["method", "code"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "collectors_api_call_seconds", "Time to answer a call to the management API.", registry=self.registry
        )
        self.key_checks = Counter(
            "collectors_api_key_checks",
            "Callers' keys checked, by outcome: ok, missing, unknown (or revoked), other_app (the key may not manage"
            " that app), unknown_app (the auth service has no such app), unreachable (the auth service did not"
            " answer).",
            ["outcome"],
            registry=self.registry,
        )

        self.group = GroupReading()
        self.registry.register(self.group)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self) -> Middleware:
        """Count every call and the key check it made (outermost: sees the status the caller gets)."""

        @web.middleware
        async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
            method = request.method if request.method in KNOWN_METHODS else "other"
            with self.seconds.time():
                try:
                    response = await handler(request)
                except web.HTTPException as exc:
                    self.calls.labels(method, str(exc.status)).inc()
                    raise
            self.calls.labels(method, str(response.status)).inc()
            outcome = request.get(_KEY_CHECK)
            if outcome is not None:
                self.key_checks.labels(outcome).inc()
            return response

        return count


def note_key_check(request: web.Request, outcome: KeyCheck) -> None:
    """Record how the caller's key check ended (counted once the call is answered)."""
    request[_KEY_CHECK] = outcome


class GroupReading(Collector):
    """What the funnel page read last, as gauges: the workers' consumer group as Kafka holds it, so it is
    there also when a worker is stuck or gone (a worker's own lag gauge goes with it)."""

    def __init__(self) -> None:
        self.reading: dict[str, Any] = {}

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "collectors_group_lag",
            "Records of the workers' partitions not committed by their consumer group (end - committed offset).",
            labels=["topic", "partition"],
        )
        for partition in self.reading.get("lag", []):
            lag.add_metric([partition["topic"], str(partition["partition"])], partition["lag"])
        yield lag
        letters = GaugeMetricFamily(
            "collectors_group_dead_letters",
            "Records in the dead-letter topic, by collector ('' for undecodable events) and reason.",
            labels=["collector", "reason"],
        )
        for letter in self.reading.get("dead_letters", []):
            letters.add_metric([letter["collector"], letter["reason"]], letter["count"])
        yield letters
