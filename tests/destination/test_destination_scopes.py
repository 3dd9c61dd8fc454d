"""MyScopes (`GET /v2/scopes`): introspection of the caller's key over real HTTP."""

from __future__ import annotations

import aiohttp
import pytest

from .support import Keys
from .test_destination_http import call


async def test_app_key_shows_its_owner_app_and_scopes(url: str, http: aiohttp.ClientSession, keys: Keys) -> None:
    status, body, _ = await call(http, "GET", f"{url}/v2/scopes", keys.post)
    assert status == 200
    assert body["status"] == {"code": 10000, "description": "Ok"}
    assert (body["user_id"], body["app_id"], body["scopes"]) == ("alice", "photos", ["ListInputs", "PostInputs"])
    assert isinstance(body["key_id"], str) and body["key_id"]
    assert keys.post not in str(body)


async def test_user_wide_key_has_no_app(url: str, http: aiohttp.ClientSession, keys: Keys) -> None:
    status, body, _ = await call(http, "GET", f"{url}/v2/scopes", keys.user_wide)
    assert status == 200
    assert (body["user_id"], body["app_id"], body["scopes"]) == ("alice", None, ["All"])


@pytest.mark.parametrize("header", [None, "", "Bearer abc", "Key "])
async def test_missing_or_malformed_header_is_refused(
    url: str, http: aiohttp.ClientSession, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    async with http.get(f"{url}/v2/scopes", headers=headers) as response:
        body = await response.json()
    assert response.status == 401
    assert body["status"]["code"] == 11008


async def test_unknown_and_revoked_keys_are_refused_without_echoing_them(
    url: str, http: aiohttp.ClientSession, keys: Keys
) -> None:
    for key in ("never-issued-key-0001", keys.revoked):
        status, body, _ = await call(http, "GET", f"{url}/v2/scopes", key)
        assert status == 401
        assert body["status"]["code"] == 11008
        assert key not in str(body)
        assert key[:4] + "…" in body["status"]["details"]
