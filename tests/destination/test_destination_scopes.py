"""MyScopes (`GET /v2/myscopes`, `/v2/my_scopes`, `/v2/users/{u}/apps/{a}/myscopes`, and `/v2/scopes` kept for
older callers): introspection of the caller's key over real HTTP, in Clarifai's shape."""

from __future__ import annotations

import aiohttp
import pytest

from .support import Keys
from .test_destination_http import call


async def test_app_key_shows_its_owner_app_and_scopes(url: str, http: aiohttp.ClientSession, keys: Keys) -> None:
    status, body, _ = await call(http, "GET", f"{url}/v2/myscopes", keys.post)
    assert status == 200
    assert body["status"] == {"code": 10000, "description": "Ok"}
    assert (body["user_id"], body["app_id"], body["scopes"]) == ("alice", "photos", ["ListInputs", "PostInputs"])
    assert isinstance(body["key_id"], str) and body["key_id"]
    assert keys.post not in str(body)


async def test_user_wide_key_has_no_app(url: str, http: aiohttp.ClientSession, keys: Keys) -> None:
    status, body, _ = await call(http, "GET", f"{url}/v2/myscopes", keys.user_wide)
    assert status == 200
    assert (body["user_id"], body["app_id"], body["scopes"]) == ("alice", None, ["All"])


@pytest.mark.parametrize("header", [None, "", "Bearer abc", "Key "])
async def test_missing_or_malformed_header_is_refused(
    url: str, http: aiohttp.ClientSession, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    async with http.get(f"{url}/v2/myscopes", headers=headers) as response:
        body = await response.json()
    assert response.status == 401
    assert body["status"]["code"] == 11008


async def test_unknown_and_revoked_keys_are_refused_without_echoing_them(
    url: str, http: aiohttp.ClientSession, keys: Keys
) -> None:
    for key in ("never-issued-key-0001", keys.revoked):
        status, body, _ = await call(http, "GET", f"{url}/v2/myscopes", key)
        assert status == 401
        assert body["status"]["code"] == 11008
        assert key not in str(body)
        assert key[:4] + "…" in body["status"]["details"]


@pytest.mark.parametrize(
    "path", ["/v2/myscopes", "/v2/my_scopes", "/v2/scopes", "/v2/users/alice/apps/photos/myscopes"]
)
async def test_clarifai_shape_at_every_path(url: str, http: aiohttp.ClientSession, keys: Keys, path: str) -> None:
    status, body, _ = await call(http, "GET", f"{url}{path}", keys.post_only)
    assert status == 200
    assert body["scopes"] == ["PostInputs"]
    assert body["app"] == {"id": "photos", "user_id": "alice"}
    assert body["endpoints"] == ["/clarifai.api.V2/MyScopes", "/clarifai.api.V2/PostInputs"]


async def test_app_path_names_the_app_a_user_wide_key_covers(url: str, http: aiohttp.ClientSession, keys: Keys) -> None:
    for path in ("/v2/users/alice/apps/photos/myscopes", "/v2/users/me/apps/photos/myscopes"):
        status, body, _ = await call(http, "GET", f"{url}{path}", keys.user_wide)
        assert status == 200
        assert (body["app"], body["app_id"], body["scopes"]) == ({"id": "photos", "user_id": "alice"}, None, ["All"])
    status, body, _ = await call(http, "GET", f"{url}/v2/myscopes", keys.user_wide)
    assert body["app"] == {"id": "", "user_id": "alice"}


async def test_app_path_refuses_another_app_and_a_missing_one(
    url: str, http: aiohttp.ClientSession, keys: Keys
) -> None:
    status, body, _ = await call(http, "GET", f"{url}/v2/users/bob/apps/other/myscopes", keys.post)
    assert (status, body["status"]["code"]) == (403, 11007)
    assert "alice/photos" in body["status"]["details"]
    status, body, _ = await call(http, "GET", f"{url}/v2/users/alice/apps/nowhere/myscopes", keys.user_wide)
    assert (status, body["status"]["code"]) == (404, 10020)
