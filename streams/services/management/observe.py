"""What the management API serves to watch the deployment: ``/readyz``, ``/metrics``, and the live funnel
page (``GET /``, its files under ``/page/``, its data at ``/funnel``).

The page and its data answer without a key only to a caller on the loopback interface; from elsewhere the
data needs the owner's key, as the API does, and shows only the collectors of the apps that key covers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import orjson
from aiohttp import web
from aiokafka.errors import KafkaError

from streams.kafka.probe import BrokerProbe
from streams.services.management.auth import KeyIntrospection, KeyRefused, Unreachable, caller_problem, header_key
from streams.services.management.funnel import FunnelWatch, visible_to
from streams.services.management.metrics import CONTENT_TYPE, ApiMetrics

PAGE_FILES = {"index.html": "text/html", "page.css": "text/css", "page.js": "text/javascript"}
# The API's status codes (``api.ControlCode``, which imports this module), each Clarifai's StatusCode.
FAILURE, KEY_MISSING, KEY_NOT_FOUND = 10020, 11008, 11009  # FAILURE, CONN_KEY_INVALID, CONN_KEY_NOT_FOUND
UPSTREAM_UNREACHABLE, STORE_UNAVAILABLE = 40034, 98006  # EXTERNAL_CONNECTION_ERROR, INTERNAL_DATABASE_ISSUE
READ_FOR_METRICS_S = 5.0
"""A scrape waits this long at most for Kafka; then it gets the last reading."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(document: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(document), content_type="application/json")


def _problem(status: int, code: int, description: str, details: str) -> web.Response:
    return _json({"status": {"code": code, "description": description, "details": details}}, status)


def is_loopback(remote: str | None) -> bool:
    """Whether a request came from this host (127.0.0.0/8, ::1)."""
    try:
        return remote is not None and ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class Observe:
    """The probes, metrics and page of one management API."""

    def __init__(
        self,
        *,
        metrics: ApiMetrics,
        probe: BrokerProbe | None,
        ready: Callable[[], bool],
        keys: KeyIntrospection,
        auth_url: str,
        watch: FunnelWatch | None,
    ) -> None:
        self.metrics = metrics
        self.probe = probe
        self.ready = ready
        self.keys = keys
        self.auth_url = auth_url
        self.watch = watch

    def install(self, app: web.Application) -> None:
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_page)
        app.router.add_get("/", self.page)
        app.router.add_get("/page/{name}", self.page_file)
        app.router.add_get("/funnel", self.funnel)
        app.on_cleanup.append(self._close)

    async def _close(self, app: web.Application) -> None:
        if self.watch is not None:
            await self.watch.close()

    @web.middleware
    async def until_ready(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """While the control topic is being read at start-up, the API's calls are answered 503."""
        if self.ready() or not request.path.startswith("/v2/") or request.match_info.http_exception is not None:
            return await handler(request)
        return _problem(503, STORE_UNAVAILABLE, "Starting", "the control topic is being read; retry soon (see /readyz)")

    async def readyz(self, request: web.Request) -> web.Response:
        """200 when the control topic has been read and Kafka answers; 503 with the failing checks otherwise."""
        checks = {"control_topic_read": self.ready(), "kafka": await self.probe.answers() if self.probe else True}
        ready = all(checks.values())
        return _json({"ready": ready, "checks": checks}, 200 if ready else 503)

    async def metrics_page(self, request: web.Request) -> web.Response:
        """The API's metrics, and the workers' group as the page reads it (the last reading when Kafka is down)."""
        if self.watch is not None:
            with contextlib.suppress(ConnectionError, KafkaError, TimeoutError):
                async with asyncio.timeout(READ_FOR_METRICS_S):
                    self.metrics.group.reading = await self.watch.read()
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def page(self, request: web.Request) -> web.Response:
        """The funnel page (it holds no data: that comes from ``/funnel``, which checks the caller)."""
        return self._file("index.html")

    async def page_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in PAGE_FILES:
            raise web.HTTPNotFound()
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        body = resources.files("streams.services.management").joinpath("page", name).read_bytes()
        return web.Response(body=body, content_type=PAGE_FILES[name], headers={"Cache-Control": "no-cache"})

    async def funnel(self, request: web.Request) -> web.Response:
        """Every collector's funnel, lag per partition, dead letters by reason: for the page, as JSON."""
        if self.watch is None:
            return _problem(404, FAILURE, "Not found", "this API was started without the workers' app id")
        if is_loopback(request.remote):
            return await self._reading(lambda _collector_id: True)
        clear_key = header_key(request.headers.get("Authorization", ""))
        if clear_key is None:
            return _problem(401, KEY_MISSING, "API key not found", "from another host the page needs the owner's key")
        try:
            record = await self.keys.scopes(self.auth_url, clear_key)
        except Unreachable as exc:
            return _problem(502, UPSTREAM_UNREACHABLE, "Auth service unreachable", str(exc))
        if isinstance(record, KeyRefused):
            return _problem(401, KEY_NOT_FOUND, "API key not found", record.problem)

        def allowed(collector_id: str) -> bool:
            user_id, app_id, *_ = [*collector_id.split("/", 2), "", ""]
            return caller_problem(record, user_id, app_id) is None

        return await self._reading(allowed)

    async def _reading(self, allowed: Callable[[str], bool]) -> web.Response:
        assert self.watch is not None
        try:
            return _json(visible_to(await self.watch.read(), allowed))
        except (ConnectionError, KafkaError) as exc:
            return _problem(503, STORE_UNAVAILABLE, "Kafka unavailable", f"the workers' ledgers cannot be read ({exc})")
