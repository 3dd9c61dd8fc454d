"""A small synchronous client of the management API (urllib: the CLI makes one call at a time)."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import orjson

from streams.services.management.api import MAX_ITEMS_PER_REQUEST


class ApiError(Exception):
    """The API answered with an error status; ``details`` says what to fix."""

    def __init__(self, http_status: int, code: int, description: str, details: str) -> None:
        super().__init__(f"{description} (HTTP {http_status}, code {code}){': ' + details if details else ''}")
        self.http_status = http_status
        self.code = code
        self.description = description
        self.details = details


class ServiceUnreachable(Exception):
    """The API did not answer."""


class ControlClient:
    """Calls of one caller (its key) on one management API; ``plural`` is "collectors" or "workflows"."""

    def __init__(self, api_url: str, key: str, *, timeout_s: float = 60.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._key = key
        self._timeout_s = timeout_s

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """One request; the decoded body on success, else :class:`ApiError` or :class:`ServiceUnreachable`."""
        url = self.api_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(
            url,
            data=None if body is None else orjson.dumps(body),
            method=method,
            headers={"Authorization": f"Key {self._key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return _decode(response.status, response.read())
        except urllib.error.HTTPError as exc:
            return _decode(exc.code, exc.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceUnreachable(f"the management API at {self.api_url} did not answer ({reason})") from None

    def myscopes(self) -> tuple[str, str | None]:
        """MyScopes: the user and the app (None for a key of all the user's apps) the key names."""
        app = self.call("GET", "/v2/myscopes")["app"]
        return str(app["user_id"]), str(app["id"]) or None

    def create(self, plural: str, user_id: str, app_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """PostCollectors / PostWorkflows, in batches of at most 128."""
        return self._batched("POST", plural, user_id, app_id, items, {})

    def overwrite(self, plural: str, user_id: str, app_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """PatchCollectors / PatchWorkflows with action overwrite, in batches of at most 128."""
        return self._batched("PATCH", plural, user_id, app_id, items, {"action": "overwrite"})

    def get(self, plural: str, user_id: str, app_id: str, item_id: str) -> dict[str, Any]:
        """GetCollector / GetWorkflow."""
        path = f"{_base(plural, user_id, app_id)}/{urllib.parse.quote(item_id, safe='')}"
        item: dict[str, Any] = self.call("GET", path)[plural[:-1]]
        return item

    def list_all(self, plural: str, user_id: str, app_id: str, per_page: int = 128) -> list[dict[str, Any]]:
        """Every page of ListCollectors / ListWorkflows."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self.call("GET", _base(plural, user_id, app_id), query={"page": page, "per_page": per_page})[plural]
            items.extend(batch)
            if len(batch) < per_page:
                return items
            page += 1

    def delete(self, plural: str, user_id: str, app_id: str, ids: list[str] | None) -> list[str]:
        """DeleteCollectors / DeleteWorkflows of ``ids``, or of all of them when ``ids`` is None."""
        body: dict[str, Any] = {"delete_all": True} if ids is None else {"ids": ids}
        deleted: list[str] = self.call("DELETE", _base(plural, user_id, app_id), body)["deleted"]
        return deleted

    def _batched(
        self, method: str, plural: str, user_id: str, app_id: str, items: list[dict[str, Any]], extra: dict[str, Any]
    ) -> list[dict[str, Any]]:
        stored: list[dict[str, Any]] = []
        for start in range(0, len(items), MAX_ITEMS_PER_REQUEST):
            batch = items[start : start + MAX_ITEMS_PER_REQUEST]
            stored.extend(self.call(method, _base(plural, user_id, app_id), {**extra, plural: batch})[plural])
        return stored


def _base(plural: str, user_id: str, app_id: str) -> str:
    quote = urllib.parse.quote
    return f"/v2/users/{quote(user_id, safe='')}/apps/{quote(app_id, safe='')}/{plural}"


def _decode(http_status: int, raw: bytes) -> dict[str, Any]:
    """The body of a success; raise :class:`ApiError` for an error status or a body that is not the API's."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, dict):
        raise ApiError(http_status, 0, "Not a management API answer", "check --api (or COLLECTORS_API)")
    if http_status >= 400:
        raise ApiError(
            http_status, int(status.get("code", 0)), str(status.get("description", "")), str(status.get("details", ""))
        )
    assert isinstance(body, dict)
    return body
