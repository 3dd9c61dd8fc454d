"""Key introspection through the destination service's MyScopes call (``GET /v2/scopes``).

The management API owns no keys: it asks the service that issued a key who owns it, which app it covers
and which scopes it grants, for the caller's key and for each collector's post key. A clear key is only
ever sent in the ``Authorization`` header; messages show it redacted.
"""

from __future__ import annotations

import aiohttp
import orjson
from pydantic import BaseModel, ValidationError

from schemas.collectors import Destination
from streams.core.secrets import redact
from streams.services.destination.store import SCOPE_POST_INPUTS, KeyRecord


class Unreachable(Exception):
    """The key's service did not answer MyScopes usably (down, timed out, or not a destination service)."""


class _ScopesReply(BaseModel):
    user_id: str
    app_id: str | None
    scopes: list[str]
    key_id: str


def header_key(header: str) -> str | None:
    """The clear key of an ``Authorization: Key <key>`` header, or None when there is none."""
    scheme, _, clear_key = header.partition(" ")
    clear_key = clear_key.strip()
    return clear_key if scheme.lower() == "key" and clear_key else None


class KeyIntrospection:
    """Asks services which user, app and scopes a key has, over one pooled session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def scopes(self, base_url: str, clear_key: str) -> KeyRecord | None:
        """The key's record at ``base_url``; None when the service says the key is unknown or revoked."""
        url = f"{base_url.rstrip('/')}/v2/scopes"
        try:
            async with self._session.get(url, headers={"Authorization": f"Key {clear_key}"}) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unreachable(f"{url} did not answer ({type(exc).__name__}: {exc or 'timeout'})") from None
        if status == 401:
            return None
        try:
            if status != 200:
                raise ValueError(f"HTTP {status}")
            reply = _ScopesReply.model_validate(orjson.loads(body))
        except (ValueError, ValidationError) as exc:
            raise Unreachable(f"{url} gave no MyScopes answer ({str(exc).splitlines()[0]})") from None
        return KeyRecord(reply.key_id, reply.user_id, reply.app_id, frozenset(reply.scopes), False, "")

    async def post_key_problem(self, destination: Destination) -> str | None:
        """Why the destination's key may not post inputs into its app, or None when it may."""
        assert destination.key is not None
        clear_key = destination.key.get_secret_value()
        record = await self.scopes(destination.base_url, clear_key)
        if record is None:
            return f"key {redact(clear_key)} is unknown or revoked at {destination.base_url}"
        return record.access_problem(destination.user_id, destination.app_id, SCOPE_POST_INPUTS)


def caller_problem(record: KeyRecord, user_id: str, app_id: str) -> str | None:
    """Why the caller's key may not manage the collectors of ``user_id/app_id``, or None when it may."""
    if record.covers_app(user_id, app_id):
        return None
    owner = f"app {record.user_id}/{record.app_id}" if record.app_id else f"user {record.user_id}"
    return (
        f"key id {record.key_id} belongs to {owner}, not to app {user_id}/{app_id}; "
        f"use a key of user {user_id} (for that app, or for all of the user's apps)"
    )
