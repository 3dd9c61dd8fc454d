"""The tap's HTTP server: a pass-through to the upstream API that publishes PostModelOutputs predictions.

Every request is forwarded to the upstream unchanged (method, path, query, headers but the hop-by-hop
ones, body) and its answer returned unchanged (status, headers but the hop-by-hop ones, body bytes, even
compressed). The PostModelOutputs routes (every REST binding) are tapped as well: after the answer went out,
a successful one becomes prediction events (:mod:`streams.services.tap.tap`). The tap's own routes live
under ``/_tap/``.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from streams.services.outputs_api import FAILURE, POST_MODEL_OUTPUTS_ROUTES
from streams.services.tap.tap import Tap

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 128 * 1024 * 1024

NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
"""Headers that belong to one connection (the hop-by-hop ones, and Host and Content-Length, which the next
connection sets anew): neither forwarded nor returned."""

TAP_KEY = web.AppKey("tap", Tap)
SESSION_KEY = web.AppKey("upstream_session", aiohttp.ClientSession)
UPSTREAM_KEY = web.AppKey("upstream", str)


def key_of(authorization: str) -> str:
    """The API key of an ``Authorization: Key …`` header ("" for none or another scheme)."""
    scheme, _, key = authorization.partition(" ")
    return key.strip() if scheme.lower() == "key" else ""


def _end_to_end(headers: Any) -> CIMultiDict[str]:
    return CIMultiDict((name, value) for name, value in headers.items() if name.lower() not in NOT_FORWARDED)


def decoded(body: bytes, encoding: str) -> bytes:
    """The body without its Content-Encoding (gzip, deflate; ``ValueError`` for another)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"Content-Encoding {encoding!r} is not decoded by the tap")


def _unreachable(exc: BaseException) -> web.Response:
    """The answer when the upstream cannot be reached: HTTP 502 (504 on timeout), a Clarifai status."""
    timed_out = isinstance(exc, TimeoutError)
    description = "Upstream timed out" if timed_out else "Upstream unreachable"
    body = {"status": {"code": FAILURE, "description": description, "details": f"the tap's upstream: {exc}"}}
    return web.Response(status=504 if timed_out else 502, body=orjson.dumps(body), content_type="application/json")


async def _forward(request: web.Request, body: bytes) -> tuple[int, CIMultiDict[str], bytes]:
    """Send the request to the upstream as it came; its status, end-to-end headers and body bytes."""
    session = request.app[SESSION_KEY]
    async with session.request(
        request.method,
        request.app[UPSTREAM_KEY] + request.raw_path,
        headers=_end_to_end(request.headers),
        data=body,
        skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        allow_redirects=False,
    ) as response:
        return response.status, _end_to_end(response.headers), await response.read()


async def passthrough(request: web.Request) -> web.StreamResponse:
    """Any other call: forwarded and answered unchanged, not tapped."""
    body = await request.read()
    try:
        status, headers, answer = await _forward(request, body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return _unreachable(exc)
    return web.Response(status=status, headers=headers, body=answer)


async def tapped(request: web.Request) -> web.StreamResponse:
    """PostModelOutputs: forwarded and answered unchanged; then its predictions are published."""
    tap = request.app[TAP_KEY]
    key = key_of(request.headers.get("Authorization", ""))
    tap.seen(key)
    body = await request.read()
    try:
        status, headers, answer = await _forward(request, body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        tap.failed()
        return _unreachable(exc)
    response = web.Response(status=status, headers=headers, body=answer)
    await response.prepare(request)
    await response.write_eof()  # the caller has its answer: what follows costs it nothing
    if status != 200:
        tap.failed()
        return response
    try:
        request_document = orjson.loads(decoded(body, request.headers.get("Content-Encoding", "")))
        answer_document = orjson.loads(decoded(answer, headers.get("Content-Encoding", "")))
    except (ValueError, OSError, zlib.error) as exc:
        tap.unreadable(f"{request.path}: {exc}")
        return response
    tap.answered(key, request_document, answer_document)
    return response


async def stats(request: web.Request) -> web.Response:
    """The tap's counters: calls, events, the publisher's queue, published and dropped records."""
    return web.Response(body=orjson.dumps(request.app[TAP_KEY].as_json()), content_type="application/json")


def create_app(tap: Tap, upstream: str, *, timeout_s: float = 120.0, connections: int = 1_000) -> web.Application:
    """The tap's web app, forwarding to ``upstream`` (a base URL)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[TAP_KEY] = tap
    app[UPSTREAM_KEY] = upstream.rstrip("/")

    async def session_context(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=connections, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
            app[SESSION_KEY] = session
            yield

    app.cleanup_ctx.append(session_context)
    app.router.add_get("/_tap/stats", stats)
    for path in POST_MODEL_OUTPUTS_ROUTES:
        app.router.add_post(path, tapped)
    app.router.add_route("*", "/{tail:.*}", passthrough)
    return app
