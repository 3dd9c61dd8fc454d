"""Abuse limits of the management API: bounded request bodies and a request rate per key.

A body over the limit is refused with HTTP 413 before it is read; a key over its rate with HTTP 429, Clarifai's
CONN_THROTTLED (11005) and ``Retry-After``, before anything is asked of the key's service. Keys are throttled by
a salted digest (the throttle holds no key) and refusals are logged with the key redacted.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from streams.core.secrets import redact
from streams.services.management.auth import header_key

log = logging.getLogger(__name__)

CONN_THROTTLED = 11005
REQUEST_TOO_LARGE = 40033  # Clarifai's RPC_MAX_MESSAGE_SIZE_EXCEEDED

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one request and one key may ask of the API."""

    max_body_bytes: int = 1_048_576
    """Largest request body accepted (128 collectors with long descriptions fit in well under 1 MiB)."""
    requests_per_s: float = 20.0
    """Requests per second a key may make, sustained."""
    burst: int = 100
    """Requests a key may make at once before the rate applies."""


class KeyThrottle:
    """A token bucket per key, keyed by a digest salted per process."""

    PRUNE_ABOVE = 10_000

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._clock = clock
        self._salt = os.urandom(16)
        self._buckets: dict[bytes, tuple[float, float]] = {}  # digest -> (tokens, at)

    def wait_s(self, clear_key: str) -> float:
        """0 when the key may make a request now (it is counted), else the seconds until it may."""
        now = self._clock()
        digest = hashlib.blake2b(clear_key.encode(), key=self._salt, digest_size=16).digest()
        tokens, at = self._buckets.get(digest, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        if tokens >= 1.0:
            self._buckets[digest] = (tokens - 1.0, now)
            if len(self._buckets) > self.PRUNE_ABOVE:
                self._prune(now)
            return 0.0
        self._buckets[digest] = (tokens, now)
        return (1.0 - tokens) / self._rate

    def _prune(self, now: float) -> None:
        """Forget keys whose bucket has refilled: they are as if never seen."""
        full_after = self._burst / self._rate
        self._buckets = {d: (t, at) for d, (t, at) in self._buckets.items() if now - at < full_after}


def _refusal(http_status: int, code: int, description: str, details: str) -> web.Response:
    status = {"code": code, "description": description, "details": details}
    return web.Response(status=http_status, body=orjson.dumps({"status": status}), content_type="application/json")


def guard_middleware(limits: Limits) -> Middleware:
    """A middleware refusing oversized bodies and keys over their rate, before the handler runs."""
    throttle = KeyThrottle(limits.requests_per_s, limits.burst)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > limits.max_body_bytes:
            log.info("%s %s refused: body of %d bytes", request.method, request.path, length)
            return _too_large(limits, length)
        clear_key = header_key(request.headers.get("Authorization", ""))
        if clear_key is not None:
            wait = throttle.wait_s(clear_key)
            if wait > 0:
                log.info("%s %s throttled: key %s", request.method, request.path, redact(clear_key))
                response = _refusal(
                    429,
                    CONN_THROTTLED,
                    "Making too many requests",
                    f"this key may make {limits.requests_per_s:g} requests per second (bursts of {limits.burst}); "
                    "retry after the seconds in Retry-After",
                )
                response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return response
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:  # a body sent without a length, read past the limit
            log.info("%s %s refused: body over %d bytes", request.method, request.path, limits.max_body_bytes)
            return _too_large(limits, None)

    return guard


def _too_large(limits: Limits, length: int | None) -> web.Response:
    size = f"of {length} bytes " if length is not None else ""
    return _refusal(
        413,
        REQUEST_TOO_LARGE,
        "Request body too large",
        f"the body {size}is over the limit of {limits.max_body_bytes} bytes (`collectors control serve "
        "--max-body-bytes`); send fewer collectors per request",
    )
