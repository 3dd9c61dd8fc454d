"""The OpenAPI document, /healthz and the documentation of every status code (no broker needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from streams.core.secrets import SecretBox, generate_secret
from streams.services.management.api import Catalog, ControlCode, create_app
from streams.services.management.auth import KeyIntrospection

DOCS = Path(__file__).parents[2] / "docs" / "API.md"


@pytest.fixture
async def served() -> AsyncIterator[tuple[aiohttp.ClientSession, str, web.Application]]:
    async with aiohttp.ClientSession() as http:
        catalog = Catalog("127.0.0.1:1", "unused", SecretBox([generate_secret()]))
        app = create_app(catalog, KeyIntrospection(http), "http://127.0.0.1:1")
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        try:
            yield http, f"http://{host}:{port}", app
        finally:
            await runner.cleanup()


async def test_openapi_documents_every_route(served: tuple[aiohttp.ClientSession, str, web.Application]) -> None:
    http, url, app = served
    async with http.get(f"{url}/openapi.json") as response:
        assert response.status == 200
        document = await response.json()
    assert document["openapi"].startswith("3.")
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "patch", "delete"}
    }
    served_routes = {
        (route.method, route.resource.canonical.replace("{item_id}", "{" + route.name.split("_", 1)[1] + "_id}"))
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None and route.name
    }
    assert served_routes <= documented
    operation_ids = {
        op["operationId"] for item in document["paths"].values() for op in item.values() if "operationId" in op
    }
    for name in ("Collectors", "Workflows"):
        assert {f"Post{name}", f"List{name}", f"Patch{name}", f"Delete{name}", f"Get{name[:-1]}"} <= operation_ids
    schemas = document["components"]["schemas"]
    assert {"Collector", "Workflow", "Destination", "Source", "Node", "Status", "CollectorView"} <= set(schemas)
    assert set(schemas["Status"]["properties"]["code"]["enum"]) == {int(code) for code in ControlCode}


async def test_healthz_and_unknown_routes(served: tuple[aiohttp.ClientSession, str, web.Application]) -> None:
    http, url, _ = served
    async with http.get(f"{url}/healthz") as response:
        assert (response.status, await response.json()) == (200, {"status": "ok"})
    async with http.get(f"{url}/v2/nothing") as response:
        body = await response.json()
        assert (response.status, body["status"]["code"]) == (404, 10020)
    async with http.put(f"{url}/v2/users/u/apps/a/collectors") as response:
        assert (response.status, (await response.json())["status"]["code"]) == (405, 10020)


def test_every_status_code_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for code in ControlCode:
        assert f"| {int(code)} " in text, f"{code.name} ({int(code)}) is missing from docs/API.md"
