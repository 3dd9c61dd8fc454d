"""Post batches of inputs to a destination app's inputs API, retrying what is transient.

One pooled HTTP session per destination base URL. Throttling (HTTP 429 / 11005), 5xx, timeouts and
connection errors are retried with exponential backoff and full jitter, honouring ``Retry-After``, for
as long as it takes (the partition does not advance meanwhile). Auth failures (11007, 11008, 11009) raise
:class:`AuthFailure`; per-input outcomes are classified into delivered, duplicate and permanent failures.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from schemas.inputs_api import MAX_INPUTS_PER_REQUEST, StatusCode

log = logging.getLogger(__name__)

DELIVERED_CODES = frozenset({StatusCode.INPUT_SUCCESS, StatusCode.INPUT_PENDING})
AUTH_CODES = frozenset(
    {StatusCode.CONN_INSUFFICIENT_SCOPES, StatusCode.CONN_KEY_INVALID, StatusCode.CONN_KEY_NOT_FOUND}
)


class AuthFailure(Exception):
    """The destination refused the key (11007 insufficient scopes, 11008 invalid key, 11009 key not found)."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


class Withdrawn(Exception):
    """The inputs are no longer wanted (their collector was deleted or paused) before they could be posted."""


class PermanentRequestFailure(Exception):
    """The destination refused the whole request for a reason a retry cannot fix (e.g. HTTP 400/404)."""

    def __init__(self, http_status: int, code: int, description: str) -> None:
        super().__init__(f"HTTP {http_status}, status {code}: {description}")
        self.http_status = http_status
        self.code = code
        self.description = description


@dataclass(slots=True)
class BatchOutcome:
    """What the destination did with each input of one request."""

    delivered: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    failed: list[tuple[str, int, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``max_attempts=None`` retries for as long as it takes."""

    initial_s: float = 0.2
    max_s: float = 30.0
    max_attempts: int | None = None

    def delay(self, attempt: int, retry_after: float | None, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        backoff: float = min(self.max_s, self.initial_s * 2.0 ** (attempt - 1)) * rand()
        return max(backoff, retry_after or 0.0)


RequestObserver = Callable[[int | None, float, int], None]


class TransientFailure(Exception):
    """A failure a retry may fix (throttling, 5xx, timeout, connection); raised once retries run out."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Poster:
    """Posts inputs to destinations, one connection pool per base URL."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        connections_per_destination: int = 8,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retry = retry or RetryPolicy()
        self._limit = connections_per_destination
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self.requests = 0
        self.retries = 0
        self.on_request: RequestObserver | None = None
        """Told of every request: its HTTP status (None: no answer), seconds taken and inputs carried."""

    def _session(self, base_url: str) -> aiohttp.ClientSession:
        session = self._sessions.get(base_url)
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                base_url=None,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._limit),
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
            )
            self._sessions[base_url] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    async def post_inputs(
        self,
        base_url: str,
        user_id: str,
        app_id: str,
        key: str,
        inputs: Sequence[dict[str, Any]],
        *,
        still_wanted: Callable[[], bool] | None = None,
    ) -> BatchOutcome:
        """Post up to 128 inputs, retrying transient failures; classify what the destination did with each.

        ``still_wanted`` is asked before every attempt; when it says no, :class:`Withdrawn` is raised and
        nothing more is sent (a collector deleted or paused while its destination was slow).
        """
        if len(inputs) > MAX_INPUTS_PER_REQUEST:
            raise ValueError(f"at most {MAX_INPUTS_PER_REQUEST} inputs per request, got {len(inputs)}")
        url = f"{base_url}/v2/users/{user_id}/apps/{app_id}/inputs"
        body = orjson.dumps({"inputs": list(inputs)})
        headers = {"Authorization": f"Key {key}", "Content-Type": "application/json"}
        attempt = 0
        while True:
            attempt += 1
            if still_wanted is not None and not still_wanted():
                raise Withdrawn()
            try:
                outcome = await self._attempt(url, body, headers, [i["id"] for i in inputs])
                if attempt > 1:
                    log.info("posting to %s succeeded again after %d failed attempts", url, attempt - 1)
                return outcome
            except TransientFailure as exc:
                if self._retry.max_attempts is not None and attempt >= self._retry.max_attempts:
                    raise
                self.retries += 1
                delay = self._retry.delay(attempt, exc.retry_after)
                log.warning("posting to %s failed (%s); retry %d in %.2fs", url, exc, attempt, delay)
                await asyncio.sleep(delay)

    async def _attempt(self, url: str, body: bytes, headers: dict[str, str], ids: list[str]) -> BatchOutcome:
        session = self._session(url.split("/v2/", 1)[0])
        self.requests += 1
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                payload = await response.read()
                http_status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._observe(None, started, len(ids))
            raise TransientFailure(f"{type(exc).__name__}: {exc}") from None
        self._observe(http_status, started, len(ids))
        try:
            document = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            document = {}
        status = document.get("status") or {}
        code = int(status.get("code") or 0)
        description = str(status.get("description") or status.get("details") or "")
        if http_status == 429 or code == StatusCode.CONN_THROTTLED or http_status >= 500:
            raise TransientFailure(f"HTTP {http_status} {code} {description}".strip(), retry_after)
        if code in AUTH_CODES or http_status in (401, 403):
            raise AuthFailure(code or http_status, description or f"HTTP {http_status}")
        return _classify(http_status, code, description, document, ids)

    def _observe(self, http_status: int | None, started: float, size: int) -> None:
        if self.on_request is not None:
            self.on_request(http_status, time.perf_counter() - started, size)


def _classify(http_status: int, code: int, description: str, document: dict[str, Any], ids: list[str]) -> BatchOutcome:
    outcome = BatchOutcome()
    results = {item.get("id"): item.get("status") or {} for item in document.get("inputs") or []}
    if not results:
        if http_status == 200 and code == StatusCode.SUCCESS:
            outcome.delivered.extend(ids)
            return outcome
        raise PermanentRequestFailure(http_status, code, description or "no per-input status in the answer")
    for input_id in ids:
        status = results.get(input_id)
        if status is None:
            outcome.failed.append((input_id, StatusCode.INPUT_FAILED, "the destination did not report this input"))
            continue
        input_code = int(status.get("code") or 0)
        if input_code in DELIVERED_CODES:
            outcome.delivered.append(input_id)
        elif input_code == StatusCode.INPUT_DUPLICATE:
            outcome.duplicates.append(input_id)
        else:
            outcome.failed.append((input_id, input_code, str(status.get("description") or status.get("details") or "")))
    return outcome


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
