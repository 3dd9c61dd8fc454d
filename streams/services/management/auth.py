"""Key introspection through Clarifai's MyScopes call (``GET /v2/users/{user_id}/apps/{app_id}/myscopes``,
or ``GET /v2/myscopes`` for the key's own app), as the reference destination and Clarifai's API answer it.

The management API owns no keys: it asks the service that issued a key what the key may do in an app, for
the caller's key and for each collector's post key. A clear key is only ever sent in the ``Authorization``
header; messages show it redacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from schemas.collectors import Destination
from streams.core.secrets import redact
from streams.services.destination.store import SCOPE_LIST_INPUTS, SCOPE_POST_INPUTS, KeyRecord

SUCCESS = 10000
CONN_INSUFFICIENT_SCOPES = 11007
UNKNOWN_KEY_CODES = frozenset({11008, 11009})  # CONN_KEY_INVALID, CONN_KEY_NOT_FOUND
# Clarifai's own scope names (spelled Inputs:Add in its API, Inputs_Add in its protos' S enum), as the
# project's, which are named after the calls they open.
CLARIFAI_SCOPES = {
    "Inputs:Add": SCOPE_POST_INPUTS,
    "Inputs_Add": SCOPE_POST_INPUTS,
    "Inputs:Get": SCOPE_LIST_INPUTS,
    "Inputs_Get": SCOPE_LIST_INPUTS,
}
ENDPOINT_PREFIX = "/clarifai.api.V2/"


class Unreachable(Exception):
    """The key's service did not answer MyScopes usably (down, timed out, or not a Clarifai-like service)."""


@dataclass(frozen=True)
class KeyRefused:
    """The service refused the key for the app: ``code`` 11009 (unknown or revoked), 11007 (another app's
    key) or 11101 (no such app); ``problem`` says so in words, the key redacted."""

    code: int
    problem: str


def header_key(header: str) -> str | None:
    """The clear key of an ``Authorization: Key <key>`` header, or None when there is none."""
    scheme, _, clear_key = header.partition(" ")
    clear_key = clear_key.strip()
    return clear_key if scheme.lower() == "key" and clear_key else None


def _scopes_of(body: dict[str, Any]) -> frozenset[str]:
    """The project's scope names a MyScopes answer grants: its scopes, Clarifai's scope names translated, and
    the calls its endpoints open (``/clarifai.api.V2/PostInputs`` grants PostInputs)."""
    scopes = {str(scope) for scope in body.get("scopes") or ()}
    scopes.update(CLARIFAI_SCOPES[scope] for scope in list(scopes) if scope in CLARIFAI_SCOPES)
    scopes.update(
        endpoint.removeprefix(ENDPOINT_PREFIX)
        for endpoint in body.get("endpoints") or ()
        if isinstance(endpoint, str) and endpoint.startswith(ENDPOINT_PREFIX)
    )
    return frozenset(scopes)


def record_of(body: dict[str, Any], clear_key: str, user_id: str | None) -> KeyRecord:
    """A key record from a successful MyScopes answer (the reference destination adds ``user_id``, ``app_id``
    and ``key_id``; Clarifai names the app in ``app``)."""
    app: dict[str, Any] = body["app"] if isinstance(body.get("app"), dict) else {}
    owner = body.get("user_id") or app.get("user_id") or user_id
    if not isinstance(owner, str) or not owner:
        raise ValueError("the answer names no user (no app.user_id)")
    app_id = body["app_id"] if "app_id" in body else (app.get("id") or None)
    key_id = body.get("key_id") or redact(clear_key)
    return KeyRecord(str(key_id), owner, app_id, _scopes_of(body), False, "")


class KeyIntrospection:
    """Asks services what a key may do, over one pooled session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def scopes(
        self, base_url: str, clear_key: str, user_id: str | None = None, app_id: str | None = None
    ) -> KeyRecord | KeyRefused:
        """The key's record at ``base_url`` for app ``user_id/app_id`` (its own app when not given), or why the
        service refused it."""
        base_url = base_url.rstrip("/")
        path = "/v2/myscopes"
        if user_id is not None and app_id is not None:
            path = f"/v2/users/{quote(user_id, safe='')}/apps/{quote(app_id, safe='')}/myscopes"
        url = base_url + path
        try:
            async with self._session.get(url, headers={"Authorization": f"Key {clear_key}"}) as response:
                http_status, raw = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unreachable(f"{url} did not answer ({type(exc).__name__}: {exc or 'timeout'})") from None
        try:
            body = orjson.loads(raw)
            code = body["status"]["code"] if isinstance(body, dict) and isinstance(body.get("status"), dict) else None
            if http_status == 200 and code == SUCCESS:
                return record_of(body, clear_key, user_id)
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise Unreachable(f"{url} gave no MyScopes answer ({str(exc).splitlines()[0]})") from None
        if http_status == 401 or code in UNKNOWN_KEY_CODES:
            return KeyRefused(11009, f"key {redact(clear_key)} is unknown or revoked at {base_url}")
        if (http_status == 403 or code == CONN_INSUFFICIENT_SCOPES) and app_id is not None:
            own = await self.scopes(base_url, clear_key)
            if isinstance(own, KeyRefused):
                return own
            return KeyRefused(CONN_INSUFFICIENT_SCOPES, _other_app(own, str(user_id), app_id))
        if http_status == 404 and app_id is not None:
            return KeyRefused(11101, f"app {user_id}/{app_id} does not exist at {base_url}")
        raise Unreachable(f"{url} gave no MyScopes answer (HTTP {http_status}, status {code})")

    async def post_key_problem(self, destination: Destination) -> str | None:
        """Why the destination's key may not post inputs into its app, or None when it may."""
        assert destination.key is not None
        clear_key = destination.key.get_secret_value()
        record = await self.scopes(destination.base_url, clear_key, destination.user_id, destination.app_id)
        if isinstance(record, KeyRefused):
            return record.problem
        return record.access_problem(destination.user_id, destination.app_id, SCOPE_POST_INPUTS)


def _other_app(record: KeyRecord, user_id: str, app_id: str) -> str:
    owner = f"app {record.user_id}/{record.app_id}" if record.app_id else f"user {record.user_id}"
    return (
        f"key id {record.key_id} belongs to {owner}, not to app {user_id}/{app_id}; "
        f"use a key of user {user_id} (for that app, or for all of the user's apps)"
    )


def caller_problem(record: KeyRecord, user_id: str, app_id: str) -> str | None:
    """Why the caller's key may not manage the collectors of ``user_id/app_id``, or None when it may."""
    return None if record.covers_app(user_id, app_id) else _other_app(record, user_id, app_id)
