"""The collectors calls of the management API, against the real destination (auth and post keys) and a real
broker: every call, every refusal, and that a refused request stores nothing."""

from __future__ import annotations

import random
from typing import Any

import aiohttp
import pytest

from streams.services.destination.store import Store
from streams.services.management.api import running as control_running
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import free_port

from .conftest import collector
from .support import Api, Keys

pytestmark = pytest.mark.kafka


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["collectors"]]


async def stored_ids(api: Api, app: str = "alice/photos") -> list[str]:
    status, body = await api.call("GET", "collectors", app=app)
    assert status == 200, body
    return ids(body)


def assert_refused(status: int, body: dict[str, Any], http_status: int, code: int, *fragments: str) -> None:
    assert status == http_status, body
    assert set(body) == {"status"}
    assert body["status"]["code"] == code
    for fragment in fragments:
        assert fragment in body["status"]["details"], body["status"]["details"]


async def test_create_get_and_list(api: Api, keys: Keys) -> None:
    status, body = await api.call("POST", "collectors", {"collectors": [collector("dogs", api.destination, keys.post)]})
    assert status == 200
    assert body["status"] == {"code": 10000, "description": "Ok"}
    created = body["collectors"][0]
    assert created["destination"] == {
        "base_url": api.destination,
        "user_id": "alice",
        "app_id": "photos",
        "key": "alic…",
        "key_env": None,
    }
    assert created["status"] == {"code": 52001, "description": "Collector is active"}
    assert created["collector_source"] == {
        "api_post_model_outputs_collector_source": {
            "model_user_id": "clarifai",
            "model_app_id": "main",
            "model_id": "general-image-recognition",
            "post_inputs_key_id": "alic…",
        }
    }
    assert "source" not in created
    assert created["last_error"] is None
    assert created["created_at"] == created["modified_at"]

    status, body = await api.call("GET", "collectors/dogs")
    assert status == 200
    assert body["collector"] == created
    status, body = await api.call("GET", "collectors")
    assert (status, body["collectors"]) == (200, [created])


async def test_list_paginates_in_id_order(api: Api, keys: Keys) -> None:
    names = [f"c{i}" for i in range(5)]
    random.shuffle(names)
    status, body = await api.call(
        "POST", "collectors", {"collectors": [collector(n, api.destination, keys.post) for n in names]}
    )
    assert status == 200
    assert ids(body) == names  # the response keeps the request's order
    pages = []
    for page in (1, 2, 3, 4):
        status, body = await api.call("GET", f"collectors?page={page}&per_page=2")
        assert status == 200
        pages.append(ids(body))
    assert pages == [["c0", "c1"], ["c2", "c3"], ["c4"], []]
    assert await stored_ids(api) == ["c0", "c1", "c2", "c3", "c4"]  # defaults: page 1, per_page 128
    for query in ("page=0", "per_page=0", "per_page=1001", "page=x"):
        status, body = await api.call("GET", f"collectors?{query}")
        assert_refused(status, body, 400, 11102, "per_page")


async def test_patch_overwrites_keeping_created_at(api: Api, keys: Keys) -> None:
    _, body = await api.call("POST", "collectors", {"collectors": [collector("dogs", api.destination, keys.post)]})
    created = body["collectors"][0]
    changed = collector("dogs", api.destination, keys.post, description="now half", pre_queue_random_sample=0.5)
    changed["source"]["caller_user_id"] = "bob"
    status, body = await api.call("PATCH", "collectors", {"action": "overwrite", "collectors": [changed]})
    assert status == 200
    patched = body["collectors"][0]
    source = patched["collector_source"]["api_post_model_outputs_collector_source"]
    assert (patched["description"], source["caller_user_id"]) == ("now half", "bob")
    assert patched["created_at"] == created["created_at"]
    assert patched["modified_at"] > created["modified_at"]
    _, body = await api.call("GET", "collectors/dogs")
    assert body["collector"] == patched

    status, body = await api.call("PATCH", "collectors", {"action": "overwrite", "collectors": [changed]})
    assert status == 200
    assert body["collectors"][0]["modified_at"] == patched["modified_at"]  # nothing changed: nothing written


async def test_patch_without_key_keeps_the_stored_key(api: Api, keys: Keys, store: Store) -> None:
    await api.call("POST", "collectors", {"collectors": [collector("dogs", api.destination, keys.post)]})
    paused = collector("dogs", api.destination, keys.post, status="paused")
    del paused["destination"]["key"]
    status, body = await api.call("PATCH", "collectors", {"action": "overwrite", "collectors": [paused]})
    assert status == 200
    assert body["collectors"][0]["status"] == {"code": 52002, "description": "Collector is paused"}
    assert body["collectors"][0]["destination"]["key"] == "alic…"

    # resuming checks the kept key again: once it is revoked, the collector cannot be resumed
    key_id = next(k.key_id for k in store.list_keys("alice") if k.scopes == {"PostInputs"} and k.app_id == "photos")
    store.revoke_key(key_id)
    resumed = {**paused, "status": "active"}
    status, body = await api.call("PATCH", "collectors", {"action": "overwrite", "collectors": [resumed]})
    assert_refused(status, body, 403, 11007, "collectors[0].destination.key", "unknown or revoked")
    _, body = await api.call("GET", "collectors/dogs")
    assert body["collector"]["status"]["code"] == 52002


async def test_patch_refuses_other_actions_and_missing_ids(api: Api, keys: Keys) -> None:
    await api.call("POST", "collectors", {"collectors": [collector("dogs", api.destination, keys.post)]})
    body_merge = {"action": "merge", "collectors": [collector("dogs", api.destination, keys.post)]}
    status, body = await api.call("PATCH", "collectors", body_merge)
    assert_refused(status, body, 400, 11102, "'merge'", '"overwrite"')
    status, body = await api.call(
        "PATCH", "collectors", {"collectors": [collector("dogs", api.destination, keys.post)]}
    )
    assert_refused(status, body, 400, 11102, "action")

    both = [
        collector("dogs", api.destination, keys.post, description="x"),
        collector("cats", api.destination, keys.post),
    ]
    status, body = await api.call("PATCH", "collectors", {"action": "overwrite", "collectors": both})
    assert_refused(status, body, 404, 52000, "'cats'", "POST")
    _, body = await api.call("GET", "collectors/dogs")
    assert body["collector"]["description"] == ""  # nothing of the refused request was stored


async def test_delete_by_ids_and_all(api: Api, keys: Keys) -> None:
    three = [collector(n, api.destination, keys.post) for n in ("a", "b", "c")]
    await api.call("POST", "collectors", {"collectors": three})
    status, body = await api.call("DELETE", "collectors", {"ids": ["a", "zzz"]})
    assert_refused(status, body, 404, 52000, "'zzz'", "nothing was deleted")
    status, body = await api.call("DELETE", "collectors", {"ids": ["a"]})
    assert (status, body["deleted"]) == (200, ["a"])
    assert await stored_ids(api) == ["b", "c"]
    status, body = await api.call("GET", "collectors/a")
    assert_refused(status, body, 404, 52000, "'a'")
    status, body = await api.call("DELETE", "collectors", {"delete_all": True})
    assert (status, body["deleted"]) == (200, ["b", "c"])
    assert await stored_ids(api) == []
    for wrong in ({}, {"ids": []}, {"ids": ["b"], "delete_all": True}, {"id": "b"}):
        status, body = await api.call("DELETE", "collectors", wrong)
        assert_refused(status, body, 400, 11102, "body")


async def test_get_missing_is_404(api: Api) -> None:
    status, body = await api.call("GET", "collectors/nope")
    assert_refused(status, body, 404, 52000, "'nope'", "alice/photos")


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (lambda c: c["source"].pop("model_id"), ["collectors[0].source.model_id", "Field required"]),
        (lambda c: c.update(pre_queue_random_sample=2), ["collectors[0].pre_queue_random_sample", "1"]),
        (lambda c: c.update(colour="red"), ["collectors[0].colour"]),
        (lambda c: c.update(id="no spaces"), ["collectors[0].id"]),
        (lambda c: c.pop("pre_queue_random_sample"), ["collectors[0]", "pre_queue_random_sample"]),
        (lambda c: c["destination"].update(key_env="PHOTOS_KEY"), ["destination.key_env", "environment"]),
        (lambda c: c["destination"].pop("key"), ["collectors[0].destination.key", "required", "PostInputs"]),
        (lambda c: c["destination"].update(base_url="ftp://x"), ["collectors[0].destination.base_url"]),
        (lambda c: c["destination"].update(user_id="bob"), ["collectors[0].destination.user_id", "'bob'", "'alice'"]),
        (lambda c: c["destination"].update(app_id="videos"), ["collectors[0].destination.app_id", "'videos'"]),
        (lambda c: c.update(pre_queue_workflow_id="ghost"), ["collectors[0].pre_queue_workflow_id", "'ghost'"]),
    ],
    ids=[
        "missing-field",
        "out-of-range",
        "unknown-field",
        "bad-id",
        "no-step",
        "key-env",
        "no-key",
        "bad-url",
        "other-user",
        "other-app",
        "missing-workflow",
    ],
)
async def test_bad_field_is_400_naming_it(api: Api, keys: Keys, change: Any, fragments: list[str]) -> None:
    body = collector("dogs", api.destination, keys.post)
    change(body)
    status, reply = await api.call(
        "POST", "collectors", {"collectors": [collector("ok", api.destination, keys.post), body]}
    )
    assert_refused(status, reply, 400, 11102, *[f.replace("collectors[0]", "collectors[1]") for f in fragments])
    assert keys.post not in str(reply)
    assert await stored_ids(api) == []


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"collectors": []}', b'{"collectors": {}}', b'{"collector": [{}]}'],
)
async def test_malformed_body_is_400(api: Api, body: bytes) -> None:
    url = f"{api.url}/v2/users/alice/apps/photos/collectors"
    async with api.http.post(url, data=body, headers={"Authorization": f"Key {api.key}"}) as response:
        reply = await response.json()
    assert_refused(response.status, reply, 400, 11102)


async def test_duplicate_ids_in_one_request_are_400(api: Api, keys: Keys) -> None:
    twice = [collector("dogs", api.destination, keys.post)] * 2
    status, body = await api.call("POST", "collectors", {"collectors": twice})
    assert_refused(status, body, 400, 11102, "collectors[1].id", "twice")


async def test_bad_operator_parameter_in_a_used_workflow_names_node_and_field(api: Api, keys: Keys) -> None:
    await api.call(
        "POST", "workflows", {"workflows": [{"id": "texts", "nodes": [{"operator": "text_check", "min_length": 3}]}]}
    )
    # a post-queue-only operator used as the pre-queue workflow cannot compile
    status, body = await api.call(
        "POST",
        "collectors",
        {"collectors": [collector("dogs", api.destination, keys.post, pre_queue_workflow_id="texts")]},
    )
    assert_refused(status, body, 400, 22104, "collectors[0]", "'dogs'", "'texts'", "node 0", "text_check", "post")
    assert await stored_ids(api) == []


async def test_post_of_an_existing_id_is_409_and_changes_nothing(api: Api, keys: Keys) -> None:
    _, body = await api.call("POST", "collectors", {"collectors": [collector("dogs", api.destination, keys.post)]})
    before = body["collectors"][0]
    again = [
        collector("cats", api.destination, keys.post),
        collector("dogs", api.destination, keys.post, description="x"),
    ]
    status, body = await api.call("POST", "collectors", {"collectors": again})
    assert_refused(status, body, 409, 40010, "'dogs'", "PATCH")
    assert await stored_ids(api) == ["dogs"]
    _, body = await api.call("GET", "collectors/dogs")
    assert body["collector"] == before


@pytest.mark.parametrize("key", [None, "never-issued-key-0001", "revoked"])
async def test_no_or_unknown_caller_key_is_401(api: Api, keys: Keys, key: str | None) -> None:
    used = keys.revoked if key == "revoked" else key
    for method, path, body in (
        ("GET", "collectors", None),
        ("GET", "collectors/x", None),
        ("POST", "collectors", {"collectors": [collector("dogs", api.destination, keys.post)]}),
        ("PATCH", "collectors", {"action": "overwrite", "collectors": []}),
        ("DELETE", "collectors", {"delete_all": True}),
    ):
        status, reply = await api.call(method, path, body, key=used)
        assert_refused(status, reply, 401, 11008 if used is None else 11009, "key")
        if used is not None:
            assert used not in str(reply)
    assert await stored_ids(api) == []


async def test_a_key_of_another_user_or_app_is_403_and_stores_nothing(api: Api, keys: Keys) -> None:
    dogs = {"collectors": [collector("dogs", api.destination, keys.post)]}
    status, body = await api.call("POST", "collectors", dogs, key=keys.bob)
    assert_refused(status, body, 403, 11007, "bob/other", "alice/photos")
    # alice's key cannot create a collector into bob's app, even with bob's post key
    into_bob = {"collectors": [collector("dogs", api.destination, keys.bob)]}
    status, body = await api.call("POST", "collectors", into_bob, app="bob/other")
    assert_refused(status, body, 403, 11007, "user alice", "bob/other")
    # a key limited to alice/photos manages photos, not videos
    status, body = await api.call("GET", "collectors", key=keys.photos_owner, app="alice/videos")
    assert_refused(status, body, 403, 11007, "alice/photos", "alice/videos")
    status, _ = await api.call("GET", "collectors", key=keys.photos_owner)
    assert status == 200
    assert await stored_ids(api) == []
    status, body = await api.call("GET", "collectors", key=keys.bob, app="bob/other")
    assert (status, body["collectors"]) == (200, [])


@pytest.mark.parametrize(
    ("which", "fragments"),
    [
        ("list_only", ["lacks the PostInputs scope", "ListInputs"]),
        ("videos_post", ["alice/videos", "not to app alice/photos"]),
        ("bob", ["bob/other"]),
        ("unknown", ["unknown or revoked"]),
    ],
)
async def test_a_post_key_that_cannot_post_into_the_app_is_refused_and_nothing_stored(
    api: Api, keys: Keys, which: str, fragments: list[str]
) -> None:
    bad_key = "never-issued-key-0002" if which == "unknown" else getattr(keys, which)
    batch = [collector("good", api.destination, keys.post), collector("bad", api.destination, bad_key)]
    status, body = await api.call("POST", "collectors", {"collectors": batch})
    assert_refused(status, body, 403, 11007, "collectors[1].destination.key", "PostInputs", *fragments)
    assert bad_key not in str(body)
    assert await stored_ids(api) == []


async def test_a_user_wide_post_key_of_the_owner_is_accepted(api: Api, keys: Keys) -> None:
    status, body = await api.call(
        "POST", "collectors", {"collectors": [collector("dogs", api.destination, keys.owner)]}
    )
    assert status == 200, body


async def test_unreachable_destination_is_502_and_stores_nothing(
    kafka: LocalKafka, control_topic: str, destination: str, keys: Keys
) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    allowed = [destination, gone]
    async with (
        control_running(kafka.bootstrap_servers, control_topic, destination, allowed_destinations=allowed) as url,
        aiohttp.ClientSession() as http,
    ):
        api = Api(http, url, destination, keys.owner)
        batch = [collector("good", api.destination, keys.post), collector("gone", gone, keys.post)]
        status, body = await api.call("POST", "collectors", {"collectors": batch})
        assert_refused(status, body, 502, 40034, gone, "nothing was stored")
        assert await stored_ids(api) == []


async def test_keys_never_appear_in_full_in_any_response(api: Api, keys: Keys) -> None:
    bodies: list[dict[str, Any]] = []
    calls: list[tuple[str, str, Any]] = [
        ("POST", "collectors", {"collectors": [collector("dogs", api.destination, keys.post)]}),
        ("POST", "collectors", {"collectors": [collector("dogs", api.destination, keys.post)]}),
        ("POST", "collectors", {"collectors": [collector("cats", api.destination, keys.list_only)]}),
        ("GET", "collectors/dogs", None),
        ("GET", "collectors", None),
        ("PATCH", "collectors", {"action": "overwrite", "collectors": [collector("dogs", api.destination, keys.post)]}),
        ("PATCH", "collectors", {"action": "overwrite", "collectors": [collector("dogs", api.destination, "short")]}),
        ("DELETE", "collectors", {"ids": ["dogs"]}),
    ]
    for method, path, body in calls:
        bodies.append((await api.call(method, path, body))[1])
    text = str(bodies)
    for key in (keys.post, keys.list_only, keys.owner):
        assert key not in text
    assert "alic…" in text
