"""The tap on a real broker, called with the official client over its JSON channel and its gRPC channel: the
answer is the upstream's, byte for byte; each prediction lands on the topic as an event; failed calls publish
nothing; with Kafka down, predictions still answer and the queue stays bounded."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import gzip
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import orjson
import pytest
from aiohttp import web
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2

from schemas.events import PredictionEvent
from streams.services.model.service import RunningModel
from streams.services.tap.service import RunningTap, TapSettings, running
from streams.services.web import serving
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import free_port, start_model, start_tap
from tests.conftest import read_topic

from .clients import grpc_stub, image_input, json_stub, metadata, outputs_request, png, text_input
from .conftest import Scopes

pytestmark = pytest.mark.kafka

RED = png((220, 30, 30))
TapFactory = Callable[..., Awaitable[RunningTap]]


@pytest.fixture
async def tap_factory(
    kafka: LocalKafka, model: RunningModel, scopes: Scopes, topic_factory: Callable[..., Awaitable[str]]
) -> AsyncIterator[TapFactory]:
    """Start taps in front of the reference model, publishing to the test's predictions topic."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> RunningTap:
            settings = TapSettings(
                upstream=model.url,
                upstream_grpc=f"127.0.0.1:{model.grpc_port}",
                grpc_port=0,
                broker=kafka.bootstrap_servers,
                topic=await topic_factory("predictions", partitions=2),
                auth_url=scopes.url,
            )
            settings = dataclasses.replace(settings, **overrides)
            return await stack.enter_async_context(running(settings))

        yield start


async def events_on(tap: RunningTap, kafka: LocalKafka, expect: int) -> list[dict[str, Any]]:
    """The events the tap published, once ``expect`` of them are on its topic."""
    topic = tap.tap.publisher.topic
    return await read_topic(kafka.bootstrap_servers, topic, expect=expect, timeout_s=60)


async def call(stub: Any, request: Any, key: str) -> Any:
    return await asyncio.to_thread(stub.PostModelOutputs, request, metadata=metadata(key))


async def test_json_channel_through_the_tap(
    tap_factory: TapFactory, model: RunningModel, scopes: Scopes, kafka
) -> None:
    tap = await tap_factory()
    request = outputs_request(
        [image_input(RED, "photo-1"), text_input("my dog loves the beach")],
        model_id="general",
        user_id="clarifai",
        app_id="main",
        version_id="v1",
    )
    through_tap = await call(json_stub(tap.url), request, scopes.alice_key)
    direct = await call(json_stub(model.url), request, scopes.alice_key)
    assert through_tap.status.code == status_code_pb2.SUCCESS
    assert through_tap.SerializeToString(deterministic=True) == direct.SerializeToString(deterministic=True)

    events = await events_on(tap, kafka, expect=2)
    assert len(events) == 2
    by_input = {event["output"]["input"]["id"]: event for event in events}
    photo = PredictionEvent.model_validate(by_input["photo-1"])
    assert photo.caller is not None and photo.caller.user_id == "alice"
    assert (photo.output.model.id, photo.output.model.user_id, photo.output.model.app_id) == (
        "general",
        "clarifai",
        "main",
    )
    assert photo.output.model.model_version is not None and photo.output.model.model_version.id == "v1"
    assert photo.output.input.data.image is not None
    assert base64.b64decode(photo.output.input.data.image.base64 or "") == RED  # the input as sent
    answered = {c.id: c.value for c in through_tap.outputs[0].data.concepts}
    assert {c.id: c.value for c in photo.output.data.concepts} == pytest.approx(answered, abs=1e-6)
    text_event = next(event for key, event in by_input.items() if key != "photo-1")
    assert text_event["output"]["input"]["data"] == {"text": {"raw": "my dog loves the beach"}}
    assert text_event["output"]["input"]["id"] == through_tap.outputs[1].input.id  # the id the model gave it
    assert len({event["id"] for event in events}) == 2


async def test_grpc_channel_through_the_tap(
    tap_factory: TapFactory, model: RunningModel, scopes: Scopes, kafka
) -> None:
    tap = await tap_factory()
    assert tap.grpc_port is not None and model.grpc_port is not None
    request = outputs_request([image_input(RED, "g-1")], model_id="general", user_id="clarifai", app_id="main")
    through_tap = await call(grpc_stub(tap.grpc_port), request, scopes.bob_key)
    direct = await call(grpc_stub(model.grpc_port), request, scopes.bob_key)
    assert through_tap.status.code == status_code_pb2.SUCCESS
    assert through_tap.SerializeToString(deterministic=True) == direct.SerializeToString(deterministic=True)
    json_answer = await call(json_stub(model.url), request, scopes.bob_key)
    assert through_tap == json_answer  # the model answers both transports alike

    [event] = await events_on(tap, kafka, expect=1)
    parsed = PredictionEvent.model_validate(event)
    assert parsed.caller is not None and parsed.caller.user_id == "bob"
    assert parsed.output.input.id == "g-1"
    assert base64.b64decode(parsed.output.input.data.image.base64 or "") == RED  # type: ignore[union-attr]
    assert parsed.output.model.id == "general"


@pytest.mark.parametrize(
    "path",
    [
        "/v2/users/clarifai/apps/main/models/general/versions/v1/outputs",
        "/v2/models/general/versions/v1/outputs",
        "/v2/users/clarifai/apps/main/models/general/outputs",
        "/v2/models/general/outputs",
        "/v2/users/clarifai/deployments/general-prod/outputs",
    ],
)
async def test_every_rest_binding_answers_byte_identical(
    tap_factory: TapFactory, model: RunningModel, scopes: Scopes, kafka: LocalKafka, path: str
) -> None:
    tap = await tap_factory()
    body = b'{"inputs": [{"id": "b-1", "data": {"text": {"raw": "a red car?"}}}]}'
    headers = {"Authorization": f"Key {scopes.alice_key}", "Content-Type": "application/json"}
    answers = []
    async with aiohttp.ClientSession(headers=headers) as http:
        for base in (tap.url, model.url):
            async with http.post(base + path, data=body) as response:
                answers.append((response.status, response.headers["Content-Type"], await response.read()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 200
    [event] = await events_on(tap, kafka, expect=1)
    assert event["output"]["input"] == {"id": "b-1", "data": {"text": {"raw": "a red car?"}}}
    assert event["caller"] == {"user_id": "alice"}


async def test_other_calls_pass_through_untapped(tap_factory: TapFactory, model: RunningModel, scopes: Scopes) -> None:
    tap = await tap_factory()
    async with aiohttp.ClientSession() as http:
        bodies = []
        for base in (tap.url, model.url):
            async with http.get(f"{base}/v2/models/general?x=1") as response:
                bodies.append((response.status, await response.read()))
    assert bodies[0] == bodies[1] and bodies[0][0] == 200
    assert tap.grpc_port is not None
    listed = await asyncio.to_thread(
        grpc_stub(tap.grpc_port).ListModels, service_pb2.ListModelsRequest(), metadata=metadata(scopes.alice_key)
    )
    assert listed.status.code == status_code_pb2.NOT_IMPLEMENTED  # the model's own answer
    assert tap.tap.stats.calls == 0


async def test_failed_calls_publish_nothing(tap_factory: TapFactory, scopes: Scopes, kafka: LocalKafka) -> None:
    tap = await tap_factory()
    refused = await call(json_stub(tap.url), outputs_request([image_input(b"no picture")]), scopes.alice_key)
    assert refused.status.code == status_code_pb2.FAILURE
    mixed = await call(
        json_stub(tap.url), outputs_request([image_input(b"no picture"), image_input(RED, "ok-1")]), scopes.alice_key
    )
    assert mixed.status.code == status_code_pb2.MIXED_STATUS
    no_key = aiohttp.ClientSession()
    async with no_key, no_key.post(f"{tap.url}/v2/models/general/outputs", data=b'{"inputs": []}') as response:
        assert response.status == 401  # no key: the model refuses
    assert tap.grpc_port is not None
    over_grpc = await call(grpc_stub(tap.grpc_port), outputs_request([image_input(b"no picture")]), scopes.alice_key)
    assert over_grpc.status.code == status_code_pb2.FAILURE  # in the message: the call itself is OK
    [event] = await events_on(tap, kafka, expect=1)
    assert event["output"]["input"]["id"] == "ok-1"  # only the output that succeeded
    await asyncio.sleep(1.0)
    assert tap.tap.publisher.stats.published == 1
    assert tap.tap.stats.failed_calls == 3
    assert tap.tap.stats.skipped_outputs == 1


async def test_an_unreachable_upstream_publishes_nothing(tap_factory: TapFactory, scopes: Scopes) -> None:
    nowhere = free_port()
    tap = await tap_factory(upstream=f"http://127.0.0.1:{nowhere}", upstream_grpc=f"127.0.0.1:{nowhere}")
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Key {scopes.alice_key}"}
        async with http.post(f"{tap.url}/v2/models/general/outputs", data=b"{}", headers=headers) as response:
            assert response.status == 502
            assert (await response.json())["status"]["code"] == status_code_pb2.FAILURE
    assert tap.tap.stats.failed_calls == 1
    assert tap.grpc_port is not None
    with pytest.raises(grpc.RpcError) as raised:
        await call(grpc_stub(tap.grpc_port), outputs_request([text_input("x")]), scopes.alice_key)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert tap.tap.stats.failed_calls == 1 + 5  # the client's channel tries UNAVAILABLE calls 5 times
    assert tap.tap.stats.events == 0


async def test_with_kafka_down_predictions_answer_and_the_queue_stays_bounded(
    tap_factory: TapFactory, scopes: Scopes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    tap = await tap_factory(broker=f"127.0.0.1:{free_port()}", queue_records=5)
    stub = json_stub(tap.url)
    for number in range(12):
        answer = await call(stub, outputs_request([text_input(f"call {number}")]), scopes.alice_key)
        assert answer.status.code == status_code_pb2.SUCCESS
    publisher = tap.tap.publisher.stats
    assert publisher.queued == 5
    assert publisher.dropped == 7
    assert publisher.published == 0
    assert any("dropped" in record.message and "queue full" in record.message for record in caplog.records)


async def test_a_key_is_looked_up_once_and_an_unknown_key_gives_no_caller(
    tap_factory: TapFactory, scopes: Scopes, kafka: LocalKafka
) -> None:
    tap = await tap_factory()
    stub = json_stub(tap.url)
    for number in range(3):
        await call(stub, outputs_request([text_input(f"alice {number}")]), scopes.alice_key)
    await call(stub, outputs_request([text_input("stranger")]), "a-key-nobody-issued")
    events = await events_on(tap, kafka, expect=4)
    callers = {event["output"]["input"]["data"]["text"]["raw"]: event.get("caller") for event in events}
    assert callers == {
        "alice 0": {"user_id": "alice"},
        "alice 1": {"user_id": "alice"},
        "alice 2": {"user_id": "alice"},
        "stranger": None,
    }
    assert tap.tap.callers.lookups == 2


def _free_pair() -> int:
    """A port whose next port is free too (a broker listens on both)."""
    for _ in range(50):
        port = free_port()
        with contextlib.suppress(OSError), socket.socket() as probe:
            probe.bind(("127.0.0.1", port + 1))
            return port
    raise RuntimeError("no two free ports in a row")


async def test_events_held_while_kafka_is_down_are_published_when_it_comes_back(
    tap_factory: TapFactory, scopes: Scopes, tmp_path: Path, kafka: LocalKafka
) -> None:
    port = _free_pair()
    tap = await tap_factory(broker=f"127.0.0.1:{port}")
    stub = json_stub(tap.url)
    for number in range(6):
        answer = await call(stub, outputs_request([text_input(f"while down {number}")]), scopes.alice_key)
        assert answer.status.code == status_code_pb2.SUCCESS
    assert tap.tap.publisher.stats.queued == 6
    late = LocalKafka(port=port, home=tmp_path / "late-kafka", dist=kafka.dist)
    await asyncio.to_thread(late.up, 120)
    try:
        async with asyncio.timeout(120):
            while tap.tap.publisher.stats.published < 6:
                await asyncio.sleep(0.2)
        events = await read_topic(late.bootstrap_servers, tap.tap.publisher.topic, expect=6, timeout_s=60)
    finally:
        await asyncio.to_thread(late.down)
    texts = sorted(event["output"]["input"]["data"]["text"]["raw"] for event in events)
    assert texts == [f"while down {number}" for number in range(6)]
    assert tap.tap.publisher.stats.dropped == 0


async def test_the_commands_serve_the_tap_and_the_model(
    kafka: LocalKafka, scopes: Scopes, topic_factory: Callable[..., Awaitable[str]], tmp_path: Path
) -> None:
    """``collectors model serve`` and ``collectors tap serve`` as processes of their own, over both channels."""
    topic = await topic_factory("predictions")
    model_grpc, tap_grpc = free_port(), free_port()
    model = await asyncio.to_thread(start_model, log=tmp_path / "model.log", grpc_port=model_grpc)
    try:
        tap = await asyncio.to_thread(
            start_tap,
            model.url,
            broker=kafka.bootstrap_servers,
            topic=topic,
            auth_url=scopes.url,
            log=tmp_path / "tap.log",
            grpc=(tap_grpc, f"127.0.0.1:{model_grpc}"),
        )
        try:
            request = outputs_request(
                [text_input("a cat on a boat")], model_id="general", user_id="clarifai", app_id="main"
            )
            for stub in (json_stub(tap.url), grpc_stub(tap_grpc)):
                answer = await call(stub, request, scopes.bob_key)
                assert answer.status.code == status_code_pb2.SUCCESS
                assert {c.id for c in answer.outputs[0].data.concepts} == {"animal", "vehicle"}
            events = await read_topic(kafka.bootstrap_servers, topic, expect=2, timeout_s=60)
        finally:
            tap.stop()
    finally:
        model.stop()
    assert [event["caller"] for event in events] == [{"user_id": "bob"}] * 2
    assert "tap stopped" in tap.log.read_text()


@pytest.fixture
async def gzip_model(model: RunningModel) -> AsyncIterator[str]:
    """The reference model behind a server that gzips its answers, as hosted APIs do."""

    async def outputs(request: web.Request) -> web.Response:
        async with aiohttp.ClientSession() as http:
            target = model.url + request.path
            async with http.post(target, data=await request.read(), headers=request.headers) as upstream:
                body = gzip.compress(await upstream.read(), mtime=0)
                return web.Response(
                    status=upstream.status,
                    body=body,
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                )

    app = web.Application()
    app.router.add_post("/v2/models/{model_id}/outputs", outputs)
    async with serving(app) as url:
        yield url


async def test_compressed_answers_pass_unchanged_and_are_tapped(
    tap_factory: TapFactory, gzip_model: str, scopes: Scopes, kafka: LocalKafka
) -> None:
    tap = await tap_factory(upstream=gzip_model)
    body = b'{"inputs": [{"id": "z-1", "data": {"text": {"raw": "a zipped cat"}}}]}'
    headers = {"Authorization": f"Key {scopes.alice_key}", "Accept-Encoding": "gzip"}
    answers = []
    async with aiohttp.ClientSession(headers=headers, auto_decompress=False) as http:
        for base in (tap.url, gzip_model):
            async with http.post(f"{base}/v2/models/general/outputs", data=body) as response:
                answers.append((response.status, response.headers["Content-Encoding"], await response.read()))
    assert answers[0] == answers[1]
    assert orjson.loads(gzip.decompress(answers[0][2]))["status"]["code"] == status_code_pb2.SUCCESS
    [event] = await events_on(tap, kafka, expect=1)
    assert event["output"]["input"]["id"] == "z-1"
    assert {c["id"] for c in event["output"]["data"]["concepts"]} == {"animal"}
