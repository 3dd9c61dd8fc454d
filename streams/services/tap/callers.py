"""Who calls: the user a request's key belongs to, from MyScopes (``GET /v2/myscopes``), cached per key.

Clarifai's MyScopes answers ``{"status", "scopes", "app": {"id", "user_id", ...}, "endpoints"}``; the
caller is ``app.user_id``. A key is looked up once: its user is kept for ``ttl_s``, an unknown key or a
failed lookup for ``failure_ttl_s`` (its events then carry no caller). Concurrent requests with the same
new key share one lookup. At most ``max_keys`` keys are kept (least recently used go first).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

import aiohttp
import orjson

log = logging.getLogger(__name__)

MYSCOPES_PATH = "/v2/myscopes"


class Callers:
    """MyScopes lookups against ``auth_url``, cached by key."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        auth_url: str,
        *,
        ttl_s: float = 600.0,
        failure_ttl_s: float = 30.0,
        max_keys: int = 10_000,
        timeout_s: float = 5.0,
    ) -> None:
        self._session = session
        self._url = auth_url.rstrip("/") + MYSCOPES_PATH
        self._ttl_s = ttl_s
        self._failure_ttl_s = failure_ttl_s
        self._max_keys = max_keys
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._known: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._pending: dict[str, asyncio.Task[str | None]] = {}
        self.lookups = 0
        self.failures = 0

    def cached(self, key: str) -> tuple[bool, str | None]:
        """``(True, user_id or None)`` when the key's answer is cached and fresh, else ``(False, None)``."""
        entry = self._known.get(key)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        self._known.move_to_end(key)
        return True, entry[1]

    def prefetch(self, key: str) -> None:
        """Start looking the key up if it is neither cached nor being looked up (never waits)."""
        if key and not self.cached(key)[0] and key not in self._pending:
            self._start(key)

    async def user_id(self, key: str) -> str | None:
        """The key's user (None for no key, an unknown key or a failed lookup)."""
        if not key:
            return None
        hit, user = self.cached(key)
        if hit:
            return user
        task = self._pending.get(key) or self._start(key)
        return await asyncio.shield(task)

    def _start(self, key: str) -> asyncio.Task[str | None]:
        task = asyncio.get_running_loop().create_task(self._lookup(key))
        self._pending[key] = task
        task.add_done_callback(lambda _: self._pending.pop(key, None))
        return task

    async def _lookup(self, key: str) -> str | None:
        self.lookups += 1
        user: str | None = None
        problem = ""
        try:
            async with self._session.get(
                self._url, headers={"Authorization": f"Key {key}"}, timeout=self._timeout
            ) as response:
                body = await response.read()
                if response.status == 200:
                    user = _user_of(orjson.loads(body))
                    problem = "" if user else "its answer names no app.user_id"
                else:
                    problem = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            problem = str(exc) or type(exc).__name__
        if user is None:
            self.failures += 1
            log.warning("MyScopes at %s did not name the caller of key ...%s: %s", self._url, key[-4:], problem)
        ttl = self._ttl_s if user else self._failure_ttl_s
        self._known[key] = (time.monotonic() + ttl, user)
        self._known.move_to_end(key)
        while len(self._known) > self._max_keys:
            self._known.popitem(last=False)
        return user


def _user_of(document: Any) -> str | None:
    """``app.user_id`` of a MyScopes answer, if it is a non-empty string."""
    app = document.get("app") if isinstance(document, dict) else None
    user = app.get("user_id") if isinstance(app, dict) else None
    return user if isinstance(user, str) and user else None
