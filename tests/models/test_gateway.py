"""Model calls: batching, the per-model limit, retries, ``on_error`` and the cache, against real HTTP servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from streams.core.models import ModelFailed, ModelInput, ModelSpec
from streams.delivery.poster import RetryPolicy
from streams.models.gateway import ModelGateway
from streams.services import web as serving
from streams.services.model.outputs import ModelService
from streams.services.model.service import running
from streams.tools.localstack import free_port
from tests.models.support import collector, run, text_event

FAST = RetryPolicy(initial_s=0.05, max_s=0.2)


@asynccontextmanager
async def flaky_model(failures: int, status: int = 503) -> AsyncIterator[tuple[str, list[int]]]:
    """An Open Inference model answering ``status`` to its first ``failures`` inference calls; the batch size
    of every call is recorded."""
    calls: list[int] = []
    in_flight = [0, 0]  # now, most

    async def metadata(request: web.Request) -> web.Response:
        return web.json_response({"name": "m", "inputs": [{"name": "INPUT"}], "parameters": {"labels": ["a", "b"]}})

    async def model_infer(request: web.Request) -> web.Response:
        body: Any = await request.json()
        calls.append(len(body["inputs"][0]["data"]))
        if len(calls) <= failures:
            return web.json_response({"error": "busy"}, status=status)
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        await asyncio.sleep(0.05)
        in_flight[0] -= 1
        count = len(body["inputs"][0]["data"])
        return web.json_response(
            {"outputs": [{"name": "P", "datatype": "FP32", "shape": [count, 2], "data": [0.25, 0.75] * count}]}
        )

    app = web.Application()
    app.router.add_get("/v2/models/m", metadata)
    app.router.add_post("/v2/models/m/infer", model_infer)
    async with serving.serving(app, "127.0.0.1", 0) as url:
        yield url, calls


def spec(url: str, **fields: Any) -> ModelSpec:
    return ModelSpec(protocol="open_inference", transport="rest", url=url, model_id="m", **fields)


async def test_batches_up_to_the_batch_size_and_retries_5xx() -> None:
    gateway = ModelGateway(retry=FAST)
    async with flaky_model(failures=2) as (url, calls):
        model = spec(url, batch_size=4)
        answers = await asyncio.gather(
            *(gateway.predict(model, f"i{n}", ModelInput("text", text=f"t{n}")) for n in range(10))
        )
    await gateway.close()
    assert [a.concepts[0]["id"] for a in answers] == ["b"] * 10
    assert sorted(calls[2:]) == [2, 4, 4], "ten inputs in batches of at most four; the first two calls refused"
    assert gateway.stats.retries == 2


async def test_cached_answers_do_not_call_again() -> None:
    gateway = ModelGateway()
    async with flaky_model(failures=0) as (url, calls):
        model = spec(url)
        first = await gateway.predict(model, "same", ModelInput("text", text="x"))
        again = await gateway.predict(model, "same", ModelInput("text", text="x"))
    await gateway.close()
    assert first == again and len(calls) == 1 and gateway.stats.cached == 1


@pytest.mark.parametrize(("on_error", "kept"), [("keep", True), ("drop", False)])
async def test_on_error_keep_or_drop_after_the_attempts(on_error: str, kept: bool) -> None:
    gateway = ModelGateway(retry=FAST)
    async with flaky_model(failures=100, status=429) as (url, calls):
        compiled = collector(
            [
                {
                    "operator": "model",
                    "protocol": "open_inference",
                    "url": url,
                    "model_id": "m",
                    "attempts": 3,
                    "on_error": on_error,
                },
                {"operator": "min_probability_above", "threshold": 0.0},
            ]
        )
        passed, ledger = await run(compiled, [text_event("e", "hello")], gateway)
    await gateway.close()
    assert len(calls) == 3
    assert bool(passed) is kept
    funnel = ledger.collectors["me/pets/c"]
    if kept:  # judged without the model's output: the source's concepts
        assert funnel["model_kept:w/0:model"] == 1
    else:
        assert funnel["post_out:w/0:model"] == 1
    with pytest.raises(ModelFailed):
        await ModelGateway(retry=FAST).predict(spec(url, wait=False, attempts=1), "x", ModelInput("text", text="x"))


async def test_a_down_model_makes_inputs_wait_until_it_returns() -> None:
    """on_error wait: nothing is answered while the model is down; every input once it is back."""
    port = free_port()
    gateway = ModelGateway(retry=FAST)
    compiled = collector(
        [{"operator": "model", "protocol": "clarifai", "url": f"http://127.0.0.1:{port}", "model_id": "r", "key": "k"}]
    )
    events = [text_event(f"e{i}", f"text {i}") for i in range(20)]
    judging = asyncio.ensure_future(run(compiled, events, gateway))
    await asyncio.sleep(1.5)
    assert not judging.done() and gateway.stats.retries >= 3 and gateway.stats.waiting == 20
    async with running(ModelService(), port=port):
        passed, _ = await asyncio.wait_for(judging, 30)
    await gateway.close()
    assert sorted(r["event_id"] for r in passed) == sorted(e["id"] for e in events)
