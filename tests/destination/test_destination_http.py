"""The inputs API over real HTTP: statuses per input, auth, limits, listing and injected faults."""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from schemas.inputs_api import PostInputsResponse, StatusCode
from streams.services.destination.store import BaseStore

from .support import Keys

Reply = tuple[int, dict[str, Any], CIMultiDictProxy[str]]


def image(input_id: str, **data: Any) -> dict[str, Any]:
    return {"id": input_id, "data": {"image": {"url": f"https://img.example/{input_id}.jpg"}, **data}}


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    key: str | None,
    *,
    json: Any = None,
    data: bytes | None = None,
) -> Reply:
    headers = {"Authorization": f"Key {key}"} if key is not None else {}
    async with http.request(method, url, json=json, data=data, headers=headers) as response:
        return response.status, await response.json(), response.headers


async def post(
    http: aiohttp.ClientSession, url: str, key: str | None, inputs: list[Any], path: str = "alice/photos"
) -> Reply:
    user_id, app_id = path.split("/")
    return await call(http, "POST", f"{url}/v2/users/{user_id}/apps/{app_id}/inputs", key, json={"inputs": inputs})


def codes(body: dict[str, Any]) -> list[int]:
    return [item["status"]["code"] for item in body["inputs"]]


async def test_all_new_inputs_are_stored(url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore) -> None:
    status, body, _ = await post(http, url, keys.post, [image("a"), {"id": "b", "data": {"text": {"raw": "hi"}}}])
    assert status == 200
    assert body["status"] == {"code": 10000, "description": "Ok"}
    assert body["inputs"] == [
        {"id": "a", "status": {"code": 30000, "description": "Input successfully uploaded"}},
        {"id": "b", "status": {"code": 30000, "description": "Input successfully uploaded"}},
    ]
    PostInputsResponse.model_validate(body)
    assert store.count_inputs("alice", "photos") == 2
    stored = store.get_input("alice", "photos", "a")
    assert stored is not None
    assert stored.data == {"image": {"url": "https://img.example/a.jpg"}}


async def test_duplicates_are_reported_and_not_stored_twice(
    url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore
) -> None:
    await post(http, url, keys.post, [image("a", metadata={"v": 1})])
    status, body, _ = await post(http, url, keys.post, [image("a", metadata={"v": 2})])
    assert status == 200
    assert body["status"]["code"] == StatusCode.MIXED_STATUS
    assert codes(body) == [StatusCode.INPUT_DUPLICATE]
    assert "already" in body["inputs"][0]["status"]["details"]
    assert store.count_inputs("alice", "photos") == 1
    first = store.get_input("alice", "photos", "a")
    assert first is not None and first.data["metadata"] == {"v": 1}


async def test_mixed_new_and_duplicate(url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore) -> None:
    await post(http, url, keys.post, [image("a")])
    status, body, _ = await post(http, url, keys.post, [image("a"), image("b"), image("b")])
    assert status == 200
    assert body["status"]["code"] == StatusCode.MIXED_STATUS
    assert "1 stored, 2 duplicate" in body["status"]["details"]
    assert codes(body) == [30100, 30000, 30100]
    assert [item.input_id for item in store.list_inputs("alice", "photos")] == ["a", "b"]


async def test_invalid_inputs_fail_alone(url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore) -> None:
    batch = [
        image("ok1"),
        {"data": {"image": {"url": "https://img.example/x.jpg"}}},  # no id
        {"id": "empty", "data": {"concepts": [{"id": "cat"}]}},  # no content
        {"id": "badb64", "data": {"image": {"base64": "not base64!"}}},
        {"id": "ftp", "data": {"image": {"url": "ftp://host/x.jpg"}}},
        "not an object",
        {"id": "ok2", "data": {"image": {"base64": base64.b64encode(b"\x89PNG").decode()}}},
    ]
    status, body, _ = await post(http, url, keys.post, batch)
    assert status == 200
    assert body["status"]["code"] == StatusCode.MIXED_STATUS
    assert codes(body) == [30000, 30104, 30104, 30104, 30104, 30104, 30000]
    details = [item["status"].get("details", "") for item in body["inputs"]]
    assert details[1].startswith("inputs[1]: id")
    assert "data.image.url" in details[2]
    assert "base64" in details[3]
    assert "http" in details[4]
    assert [item["id"] for item in body["inputs"]] == ["ok1", "", "empty", "badb64", "ftp", "", "ok2"]
    assert store.count_inputs("alice", "photos") == 2


async def test_nul_in_an_id_is_invalid(url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore) -> None:
    status, body, _ = await post(http, url, keys.post, [image("a\x00b"), image("c")])
    assert status == 200
    assert codes(body) == [StatusCode.INPUT_INVALID_ARGUMENT, StatusCode.INPUT_SUCCESS]
    assert "NUL" in body["inputs"][0]["status"]["details"]
    assert [item.input_id for item in store.list_inputs("alice", "photos")] == ["c"]
    status, body, _ = await call(http, "GET", f"{url}/v2/users/alice/apps/photos/inputs/a%00b", keys.post)
    assert (status, body["status"]["code"], body["status"]["description"]) == (404, 30102, "Input not found")
    status, body, _ = await post(http, url, keys.user_wide, [image("d")], path="alice/pho%00tos")
    assert status == 404 and body["status"]["description"] == "App not found"


async def test_all_invalid_is_400(url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore) -> None:
    status, body, _ = await post(http, url, keys.post, [{"id": "x", "data": {}}])
    assert status == 400
    assert body["status"]["code"] == StatusCode.FAILURE
    assert codes(body) == [StatusCode.INPUT_INVALID_ARGUMENT]
    assert store.count_inputs("alice", "photos") == 0


async def test_over_128_inputs_refused(url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore) -> None:
    status, body, _ = await post(http, url, keys.post, [image(f"i{n}") for n in range(129)])
    assert status == 400
    assert body["status"]["code"] == StatusCode.INPUT_OVER_LIMIT
    assert "at most 128" in body["status"]["details"]
    assert store.count_inputs("alice", "photos") == 0
    status, _, _ = await post(http, url, keys.post, [image(f"i{n}") for n in range(128)])
    assert status == 200
    assert store.count_inputs("alice", "photos") == 128


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"inputs": {}}', '{"inputs": ['),
        (b'{"inputs": []}', "inputs is empty"),
        (
            b'{"inputs": [{"id": "a", "data": {"text": {"raw": "x"}}}], "input_id_conflict_resolution": "SUFFIX"}',
            "SKIP",
        ),
    ],
)
async def test_malformed_body(
    url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore, payload: bytes, fragment: str
) -> None:
    status, body, _ = await call(http, "POST", f"{url}/v2/users/alice/apps/photos/inputs", keys.post, data=payload)
    assert status == 400
    assert body["status"]["code"] == StatusCode.FAILURE
    assert fragment in body["status"]["details"]
    assert store.count_inputs("alice", "photos") == 0


async def test_missing_unknown_and_revoked_keys_are_401(
    url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore
) -> None:
    unknown = "zzzz-unknown-key-0123456789"
    for key, fragment in [(None, "Authorization: Key"), (unknown, "not known"), (keys.revoked, "revoked")]:
        status, body, _ = await post(http, url, key, [image("a")])
        assert status == 401
        assert body["status"]["code"] == StatusCode.CONN_KEY_INVALID
        assert body["status"]["description"] == "API key not found"
        assert fragment in body["status"]["details"]
        assert unknown not in str(body) and keys.revoked not in str(body)
    assert store.count_inputs("alice", "photos") == 0


async def test_key_without_post_scope_is_403(
    url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore
) -> None:
    status, body, _ = await post(http, url, keys.list_only, [image("a")])
    assert status == 403
    assert body["status"]["code"] == StatusCode.CONN_INSUFFICIENT_SCOPES
    assert "PostInputs" in body["status"]["description"]
    assert "lacks the PostInputs scope" in body["status"]["details"]
    assert store.count_inputs("alice", "photos") == 0


async def test_key_of_another_app_is_403(url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore) -> None:
    status, body, _ = await post(http, url, keys.bob, [image("a")])
    assert status == 403
    assert body["status"]["code"] == StatusCode.CONN_INSUFFICIENT_SCOPES
    assert body["status"]["description"] == "API key is for another app"
    assert "bob/other" in body["status"]["details"]
    store.create_app("alice", "second")
    status, body, _ = await post(http, url, keys.post, [image("a")], path="alice/second")
    assert status == 403
    assert "alice/photos, not to app alice/second" in body["status"]["details"]
    assert store.count_inputs("alice", "photos") == store.count_inputs("alice", "second") == 0


async def test_user_wide_key_and_unknown_app(
    url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore
) -> None:
    status, body, _ = await post(http, url, keys.user_wide, [image("a")], path="alice/nope")
    assert status == 404
    assert body["status"]["code"] == StatusCode.FAILURE
    assert "alice/nope does not exist" in body["status"]["details"]
    store.create_app("alice", "second")
    status, _, _ = await post(http, url, keys.user_wide, [image("a")], path="alice/second")
    assert status == 200
    assert store.count_inputs("alice", "second") == 1


async def test_listing_paginates_in_insertion_order(url: str, http: aiohttp.ClientSession, keys: Keys) -> None:
    ids = [f"in-{n:02d}" for n in range(5)]
    await post(http, url, keys.post, [image(i) for i in reversed(ids[:3])])
    await post(http, url, keys.post, [image(i) for i in ids[3:]])
    expected = ["in-02", "in-01", "in-00", "in-03", "in-04"]
    base = f"{url}/v2/users/alice/apps/photos/inputs"
    pages = []
    for page in (1, 2, 3, 4):
        status, body, _ = await call(http, "GET", f"{base}?page={page}&per_page=2", keys.list_only)
        assert status == 200 and body["status"]["code"] == 10000
        pages.append([item["id"] for item in body["inputs"]])
    assert pages == [expected[:2], expected[2:4], expected[4:], []]
    _, body, _ = await call(http, "GET", base, keys.post)
    assert [item["id"] for item in body["inputs"]] == expected
    assert body["inputs"][0]["data"] == {"image": {"url": "https://img.example/in-02.jpg"}}
    assert body["inputs"][0]["created_at"].endswith("Z")

    status, body, _ = await call(http, "GET", f"{base}/in-03", keys.user_wide)
    assert status == 200 and body["input"]["id"] == "in-03"
    status, body, _ = await call(http, "GET", f"{base}/missing", keys.post)
    assert status == 404 and "missing" in body["status"]["details"]
    status, body, _ = await call(http, "GET", f"{base}?page=0", keys.post)
    assert status == 400 and "page" in body["status"]["details"]


async def test_listing_needs_list_scope(url: str, http: aiohttp.ClientSession, keys: Keys) -> None:
    status, body, _ = await call(http, "GET", f"{url}/v2/users/alice/apps/photos/inputs", keys.post_only)
    assert status == 403
    assert body["status"]["code"] == StatusCode.CONN_INSUFFICIENT_SCOPES
    assert "ListInputs" in body["status"]["description"]


async def test_health_and_unknown_route(url: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
    async with http.get(f"{url}/v2/nothing") as response:
        assert response.status == 404
        body = await response.json()
        assert body["status"]["code"] == StatusCode.FAILURE
        assert "/v2/users/{user_id}/apps/{app_id}/inputs" in body["status"]["details"]
    async with http.delete(f"{url}/v2/users/alice/apps/photos/inputs") as response:
        assert response.status == 405
        assert (await response.json())["status"]["code"] == StatusCode.FAILURE


async def set_faults(http: aiohttp.ClientSession, url: str, **config: Any) -> None:
    async with http.post(f"{url}/_faults", json=config) as response:
        assert response.status == 200, await response.text()


async def test_fault_down_is_503(url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore) -> None:
    await set_faults(http, url, down=True)
    status, body, headers = await post(http, url, keys.post, [image("a")])
    assert status == 503
    assert body["status"]["code"] == StatusCode.FAILURE
    assert headers["Retry-After"] == "1"
    status, _, _ = await call(http, "GET", f"{url}/v2/users/alice/apps/photos/inputs", keys.post)
    assert status == 503
    assert store.count_inputs("alice", "photos") == 0
    await set_faults(http, url, down=False)
    status, _, _ = await post(http, url, keys.post, [image("a")])
    assert status == 200
    assert store.count_inputs("alice", "photos") == 1


async def test_fault_throttle_stores_nothing(
    url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore
) -> None:
    await set_faults(http, url, error_rate=1.0, error_status=429)
    for _ in range(3):
        status, body, headers = await post(http, url, keys.post, [image("a"), image("b")])
        assert status == 429
        assert body["status"]["code"] == StatusCode.CONN_THROTTLED
        assert headers["Retry-After"] == "1"
    assert store.count_inputs("alice", "photos") == 0
    await set_faults(http, url, error_rate=1.0, error_status=500)
    status, body, _ = await post(http, url, keys.post, [image("a")])
    assert status == 500 and body["status"]["code"] == StatusCode.FAILURE
    assert store.count_inputs("alice", "photos") == 0


async def test_fault_rate_is_a_fraction(url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore) -> None:
    await set_faults(http, url, error_rate=0.5, error_status=500, seed=7)
    statuses = [(await post(http, url, keys.post, [image(f"x{n}")]))[0] for n in range(60)]
    failures = statuses.count(500)
    assert 15 <= failures <= 45
    assert statuses.count(200) == store.count_inputs("alice", "photos") == 60 - failures


async def test_fault_delay_slows_posts(url: str, http: aiohttp.ClientSession, keys: Keys) -> None:
    await set_faults(http, url, delay_s=0.3)
    started = time.monotonic()
    status, _, _ = await post(http, url, keys.post, [image("a")])
    assert status == 200
    assert time.monotonic() - started >= 0.3


async def test_fault_config_is_validated(url: str, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{url}/_faults", json={"error_rate": 2, "error_status": 418}) as response:
        assert response.status == 400
        details = (await response.json())["status"]["details"]
        assert "error_rate" in details and "error_status" in details
    async with http.get(f"{url}/_faults") as response:
        assert (await response.json())["error_rate"] == 0.0


async def test_faults_not_mounted_by_default(store: BaseStore, http: aiohttp.ClientSession) -> None:
    from streams.services.destination.server import running

    async with running(store) as base_url, http.post(f"{base_url}/_faults", json={"down": True}) as response:
        assert response.status == 404


async def test_stats_count_outcomes(url: str, http: aiohttp.ClientSession, keys: Keys) -> None:
    await post(http, url, keys.post, [image("a"), image("b")])
    await post(http, url, keys.post, [image("a"), image("c"), {"id": "bad", "data": {}}])
    await post(http, url, None, [image("d")])
    async with http.get(f"{url}/_stats") as response:
        stats = await response.json()
    assert stats["requests"] == {"post_inputs": 3}
    assert stats["http_statuses"] == {"200": 2, "401": 1}
    assert stats["status_codes"] == {"10000": 1, "10010": 1, "11008": 1}
    assert stats["inputs"] == {"stored": 3, "duplicate": 1, "invalid": 1}
    assert stats["batch_sizes"]["2"] == 1 and stats["batch_sizes"]["3-4"] == 1


async def test_bindings_without_the_app_use_the_keys_app(
    url: str, http: aiohttp.ClientSession, keys: Keys, store: BaseStore
) -> None:
    status, body, _ = await call(http, "POST", f"{url}/v2/inputs", keys.post, json={"inputs": [image("k")]})
    assert (status, codes(body)) == (200, [30000])
    assert [item.input_id for item in store.list_inputs("alice", "photos", 1, 10)] == ["k"]
    status, body, _ = await call(http, "GET", f"{url}/v2/inputs", keys.post)
    assert (status, [item["id"] for item in body["inputs"]]) == (200, ["k"])
    status, body, _ = await call(http, "GET", f"{url}/v2/inputs/k", keys.post)
    assert (status, body["input"]["id"]) == (200, "k")
    status, body, _ = await call(http, "POST", f"{url}/v2/inputs", keys.user_wide, json={"inputs": [image("w")]})
    assert (status, body["status"]["code"]) == (400, 10020)
    assert "name the app" in body["status"]["details"]
