"""The workflows calls of the management API: the same five calls, compilation at write time, and workflows
still used by collectors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp import web

from streams.core.secrets import load_box, open_document
from streams.kafka.control_topic import ControlReader
from streams.tools.localkafka.broker import LocalKafka

from .conftest import collector
from .support import Api, Keys
from .test_collectors_api import assert_refused

pytestmark = pytest.mark.kafka


def workflow(workflow_id: str, *nodes: dict[str, Any]) -> dict[str, Any]:
    return {"id": workflow_id, "nodes": list(nodes) or [{"operator": "random_sample", "keep_fraction": 0.5}]}


async def test_create_get_list_patch_delete(api: Api) -> None:
    status, body = await api.call("POST", "workflows", {"workflows": [workflow("b"), workflow("a")]})
    assert status == 200
    created = {w["id"]: w for w in body["workflows"]}
    assert created["a"]["nodes"] == [{"operator": "random_sample", "keep_fraction": 0.5}]
    status, body = await api.call("GET", "workflows/a")
    assert (status, body["workflow"]) == (200, created["a"])
    status, body = await api.call("GET", "workflows?per_page=1&page=2")
    assert [w["id"] for w in body["workflows"]] == ["b"]

    texts = workflow("a", {"operator": "text_check", "min_length": 3})
    status, body = await api.call("PATCH", "workflows", {"action": "overwrite", "workflows": [texts]})
    assert status == 200
    assert body["workflows"][0]["nodes"] == texts["nodes"]
    assert body["workflows"][0]["created_at"] == created["a"]["created_at"]

    status, body = await api.call("DELETE", "workflows", {"ids": ["a"]})
    assert (status, body["deleted"]) == (200, ["a"])
    status, body = await api.call("DELETE", "workflows", {"delete_all": True})
    assert (status, body["deleted"]) == (200, ["b"])
    status, body = await api.call("GET", "workflows")
    assert body["workflows"] == []


async def test_missing_existing_and_bad_workflows(api: Api) -> None:
    status, body = await api.call("GET", "workflows/nope")
    assert_refused(status, body, 404, 22102, "'nope'")
    status, body = await api.call("PATCH", "workflows", {"action": "overwrite", "workflows": [workflow("nope")]})
    assert_refused(status, body, 404, 22102, "'nope'")
    await api.call("POST", "workflows", {"workflows": [workflow("w")]})
    status, body = await api.call("POST", "workflows", {"workflows": [workflow("w")]})
    assert_refused(status, body, 409, 22100, "'w'")
    status, body = await api.call("POST", "workflows", {"workflows": [{"id": "x", "nodes": []}]})
    assert_refused(status, body, 400, 11102, "workflows[0].nodes")


@pytest.mark.parametrize(
    ("node", "fragments"),
    [
        ({"operator": "random_sample", "keep_fraction": 5}, ["node 0", "random_sample", "field `keep_fraction`"]),
        ({"operator": "random_sample", "keep_fraction": 0.5, "extra": 1}, ["node 0", "field `extra`"]),
        ({"operator": "no_such_operator"}, ["node 0", "unknown operator"]),
        ({"operator": "text_check", "pattern": "("}, ["node 0", "text_check", "`pattern`"]),
    ],
    ids=["out-of-range", "unknown-parameter", "unknown-operator", "bad-pattern"],
)
async def test_bad_operator_parameter_is_400_naming_node_and_field(
    api: Api, node: dict[str, Any], fragments: list[str]
) -> None:
    status, body = await api.call("POST", "workflows", {"workflows": [workflow("ok"), workflow("bad", node)]})
    assert_refused(status, body, 400, 22104, "workflows[1]", "workflow 'bad'", *fragments)
    status, body = await api.call("GET", "workflows")
    assert body["workflows"] == []


async def test_a_workflow_mixing_stages_is_refused(api: Api) -> None:
    mixed = workflow("mixed", {"operator": "random_sample", "keep_fraction": 0.5}, {"operator": "text_check"})
    status, body = await api.call("POST", "workflows", {"workflows": [mixed]})
    assert_refused(status, body, 400, 22104, "as a pre-queue workflow", "as a post-queue workflow", "node 1", "node 0")


async def test_a_workflow_in_use_cannot_be_deleted_or_broken(api: Api, keys: Keys) -> None:
    await api.call("POST", "workflows", {"workflows": [workflow("sample"), workflow("spare")]})
    dogs = collector("dogs", api.destination, keys.post, pre_queue_workflow_id="sample")
    status, body = await api.call("POST", "collectors", {"collectors": [dogs]})
    assert status == 200, body

    for wrong in ({"ids": ["sample"]}, {"delete_all": True}):
        status, body = await api.call("DELETE", "workflows", wrong)
        assert_refused(status, body, 409, 22999, "'dogs'", "nothing was deleted")
    texts = workflow("sample", {"operator": "text_check", "min_length": 3})
    status, body = await api.call("PATCH", "workflows", {"action": "overwrite", "workflows": [texts]})
    assert_refused(status, body, 400, 22104, "collector 'dogs'", "text_check")
    status, body = await api.call("GET", "workflows")
    assert [w["id"] for w in body["workflows"]] == ["sample", "spare"]
    assert body["workflows"][0]["nodes"][0]["operator"] == "random_sample"

    await api.call("DELETE", "collectors", {"ids": ["dogs"]})
    status, body = await api.call("DELETE", "workflows", {"ids": ["sample"]})
    assert status == 200, body


@pytest.mark.parametrize(
    ("node", "fragment"),
    [
        ({"operator": "python", "callable": "os:getcwd"}, "`python` operators are not accepted through the API"),
        (
            {"operator": "concept_map", "graph": "/etc/passwd", "target_concepts": ["x"]},
            "give the knowledge graph inline",
        ),
        (
            {"operator": "any", "nodes": [{"operator": "python", "callable": "os:getcwd"}]},
            "nodes[0].nodes[0]: `python` operators",
        ),
    ],
)
async def test_nodes_that_reach_the_host_are_refused(api: Api, node: dict[str, Any], fragment: str) -> None:
    """Through the API, no caller can make the API or the workers import modules or read files."""
    status, body = await api.call("POST", "workflows", {"workflows": [{"id": "risky", "nodes": [node]}]})
    assert status == 400
    assert fragment in body["status"]["details"]
    status, _ = await api.call("GET", "workflows/risky")
    assert status == 404


async def test_a_model_nodes_key_is_sealed_in_the_control_topic_and_never_shown(
    api: Api, kafka: LocalKafka, control_topic: str
) -> None:
    """A model node's key, inline or nested, is stored sealed, shown redacted, and kept when the redacted form
    comes back (``get -o yaml`` applied again)."""
    model = {"operator": "model", "protocol": "clarifai", "url": api.destination, "model_id": "m"}
    nodes = [
        model | {"key": "model-key-first-0001"},
        {"operator": "any", "nodes": [model | {"key": "model-key-2nd-0002"}]},
    ]
    status, body = await api.call("POST", "workflows", {"workflows": [{"id": "keyed", "nodes": nodes}]})
    assert status == 200, body
    shown = body["workflows"][0]
    assert shown["nodes"][0]["key"] == "mode…" and shown["nodes"][1]["nodes"][0]["key"] == "mode…"
    assert "model-key-" not in str(body).replace("mode…", "")

    shown.pop("created_at"), shown.pop("modified_at")
    status, body = await api.call("PATCH", "workflows", {"action": "overwrite", "workflows": [shown]})
    assert status == 200, body

    reader = ControlReader(kafka.bootstrap_servers, control_topic)
    await reader.start()
    try:
        await reader.ready.wait()
        [stored] = [document for key, document in reader.state.items() if key.endswith("/keyed")]
    finally:
        await reader.stop()
    assert "model-key-" not in orjson.dumps(stored).decode()
    opened = open_document(stored, load_box())
    assert opened["workflow"]["nodes"][0]["key"] == "model-key-first-0001"
    assert opened["workflow"]["nodes"][1]["nodes"][0]["key"] == "model-key-2nd-0002"


async def test_a_model_outside_the_allow_list_is_refused_before_any_call(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers call a model node's URL: it is on the destination allow-list or the workflow is refused, and
    the would-be model receives nothing."""
    monkeypatch.setenv("MODEL_KEY", "model-key-of-the-api-host")
    calls: list[str] = []

    async def record(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        rest = {"protocol": "open_inference", "url": f"http://127.0.0.1:{port}", "labels": ["a"]}
        grpc = {"protocol": "clarifai", "transport": "grpc", "url": f"127.0.0.1:{port}", "key_env": "MODEL_KEY"}
        for spelling in (rest, grpc):
            node = {"operator": "model", "model_id": "m", **spelling}
            nested = {"operator": "any", "nodes": [node]}
            status, body = await api.call("POST", "workflows", {"workflows": [{"id": "elsewhere", "nodes": [nested]}]})
            assert status == 403, body
            assert body["status"]["code"] == 30103
            assert "workflows[0].nodes[0].nodes[0].url" in body["status"]["details"]
            assert "--allowed-destination" in body["status"]["details"]
        status, _ = await api.call("GET", "workflows/elsewhere")
        assert status == 404
        assert calls == []
    finally:
        await runner.cleanup()
