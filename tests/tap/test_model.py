"""The reference model over real HTTP: PostModelOutputs with the official client's JSON channel (every REST
binding), and the Open Inference Protocol v2."""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf.json_format import MessageToDict

from streams.services.model.outputs import ModelService
from streams.services.model.predict import LABELS, MODEL_VERSION_ID
from streams.services.model.service import RunningModel
from streams.services.model.service import running as model_running

from .clients import image_input, json_stub, metadata, outputs_request, png, text_input

RED = png((220, 30, 30))
DARK_RED = png((120, 10, 10))
STRIPED_BLUE = png((30, 60, 220), stripes=True)


def concepts(output: Any) -> dict[str, float]:
    return {concept.id: concept.value for concept in output.data.concepts}


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def predict(url: str, request: Any, key: str = "any-key") -> Any:
    stub = json_stub(url)
    return await asyncio.to_thread(stub.PostModelOutputs, request, metadata=metadata(key))


async def test_image_concepts_come_from_the_pixels(model: RunningModel) -> None:
    answer = await predict(model.url, outputs_request([image_input(RED), image_input(STRIPED_BLUE)]))
    assert answer.status.code == status_code_pb2.SUCCESS
    red, striped = (concepts(output) for output in answer.outputs)
    assert red["red"] > 0.9 and "blue" not in red
    assert red["colorful"] > red.get("monochrome", 0.0)
    assert red["smooth"] > red.get("detailed", 0.0)
    assert striped["blue"] > striped.get("red", 0.0)
    assert striped["detailed"] > striped.get("smooth", 0.0)
    assert striped["high-contrast"] > striped.get("low-contrast", 0.0)
    assert red["landscape"] == pytest.approx(0.5, abs=0.01)  # 96 x 64
    values = [concept.value for concept in answer.outputs[0].data.concepts]
    assert values == sorted(values, reverse=True)


async def test_text_concepts_come_from_its_keywords(model: RunningModel) -> None:
    answer = await predict(
        model.url, outputs_request([text_input("I love my dog, the best pet"), text_input("Is the pizza bad?")])
    )
    pet, pizza = (concepts(output) for output in answer.outputs)
    assert {"animal", "positive"} <= set(pet) and not {"food", "negative", "question"} & set(pet)
    assert {"food", "negative", "question"} <= set(pizza) and "animal" not in pizza


async def test_embeddings_are_unit_length_and_near_for_near_inputs(model: RunningModel) -> None:
    answer = await predict(
        model.url, outputs_request([image_input(RED), image_input(DARK_RED), image_input(STRIPED_BLUE)])
    )
    red, dark_red, striped = (list(output.data.embeddings[0].vector) for output in answer.outputs)
    assert answer.outputs[0].data.embeddings[0].num_dimensions == len(red) == 64
    assert math.sqrt(sum(x * x for x in red)) == pytest.approx(1.0, abs=1e-4)
    assert cosine(red, dark_red) > cosine(red, striped) + 0.2


async def test_the_same_request_gets_the_same_bytes(model: RunningModel) -> None:
    body = {"inputs": [{"data": {"image": {"base64": base64.b64encode(RED).decode()}}}]}
    url = f"{model.url}/v2/users/u/apps/a/models/m/outputs"
    async with aiohttp.ClientSession(headers={"Authorization": "Key k"}) as http:
        answers = []
        for _ in range(2):
            async with http.post(url, json=body) as response:
                answers.append(await response.read())
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("fields", "model_user", "version"),
    [
        ({"user_id": "ann", "app_id": "vision", "version_id": "v7"}, ("ann", "vision"), "v7"),
        ({"user_id": "ann", "app_id": "vision"}, ("ann", "vision"), MODEL_VERSION_ID),
        ({"version_id": "v7"}, ("clarifai", "main"), "v7"),
        ({}, ("clarifai", "main"), MODEL_VERSION_ID),
    ],
)
async def test_every_model_binding_answers(
    model: RunningModel, fields: dict[str, str], model_user: tuple[str, str], version: str
) -> None:
    answer = await predict(model.url, outputs_request([text_input("a cat")], model_id="pets", **fields))
    assert answer.status.code == status_code_pb2.SUCCESS
    model_answered = answer.outputs[0].model
    assert (model_answered.id, model_answered.user_id, model_answered.app_id) == ("pets", *model_user)
    assert model_answered.model_version.id == version


async def test_the_deployment_binding_answers(model: RunningModel) -> None:
    """The client cannot fill this binding's path (it reads ``id`` at the request's top level): plain HTTP."""
    body = {
        "runner_selector": {"deployment": {"id": "pets-prod", "user_id": "ann"}},
        "inputs": [{"data": {"text": {"raw": "a cat"}}}],
    }
    url = f"{model.url}/v2/users/ann/deployments/pets-prod/outputs"
    async with aiohttp.ClientSession(headers={"Authorization": "Key k"}) as http, http.post(url, json=body) as response:
        answer = await response.json()
    assert answer["status"]["code"] == status_code_pb2.SUCCESS
    assert (answer["outputs"][0]["model"]["id"], answer["outputs"][0]["model"]["user_id"]) == ("pets-prod", "ann")


async def test_inputs_it_cannot_read_fail_alone(model: RunningModel) -> None:
    not_an_image = image_input(b"these bytes are no picture")
    mixed = await predict(model.url, outputs_request([image_input(RED), not_an_image]))
    assert mixed.status.code == status_code_pb2.MIXED_STATUS
    assert [o.status.code for o in mixed.outputs] == [status_code_pb2.SUCCESS, status_code_pb2.INPUT_INVALID_ARGUMENT]
    assert "not an image" in mixed.outputs[1].status.details
    failed = await predict(model.url, outputs_request([not_an_image]))
    assert failed.status.code == status_code_pb2.FAILURE


async def test_a_call_without_a_key_is_refused(model: RunningModel) -> None:
    async with aiohttp.ClientSession() as http, http.post(f"{model.url}/v2/models/m/outputs", json={"inputs": []}) as r:
        assert r.status == 401
        assert (await r.json())["status"]["code"] == 11008


@pytest.fixture
async def picture_server() -> AsyncIterator[str]:
    """A loopback web server with one picture at /red.png."""

    async def red(request: web.Request) -> web.Response:
        return web.Response(body=RED, content_type="image/png")

    app = web.Application()
    app.router.add_get("/red.png", red)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_images_by_url_are_downloaded(model: RunningModel, picture_server: str) -> None:
    by_url = resources_pb2.Input(data=resources_pb2.Data(image=resources_pb2.Image(url=f"{picture_server}/red.png")))
    missing = resources_pb2.Input(data=resources_pb2.Data(image=resources_pb2.Image(url=f"{picture_server}/nope.png")))
    answer = await predict(model.url, outputs_request([by_url, image_input(RED), missing]))
    assert concepts(answer.outputs[0]) == concepts(answer.outputs[1])
    assert answer.outputs[2].status.code == status_code_pb2.INPUT_DOWNLOAD_FAILED


async def test_added_latency_is_waited() -> None:
    async with model_running(ModelService(latency_s=0.3)) as slow:
        started = time.monotonic()
        await predict(slow.url, outputs_request([text_input("slow")]))
        assert time.monotonic() - started >= 0.3


async def test_open_inference_protocol_metadata_names_the_labels(model: RunningModel) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{model.url}/v2/models/pets") as response:
        document = await response.json()
    assert response.status == 200
    assert document["parameters"]["labels"] == list(LABELS)
    assert document["inputs"] == [{"name": "INPUT", "datatype": "BYTES", "shape": [-1]}]
    assert {o["name"]: o["shape"] for o in document["outputs"]} == {
        "PROBABILITIES": [-1, len(LABELS)],
        "EMBEDDING": [-1, 64],
    }


async def infer(url: str, body: dict[str, Any], path: str = "/v2/models/pets/infer") -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(url + path, json=body) as response:
        return response.status, await response.json()


async def test_open_inference_protocol_gives_class_probabilities(model: RunningModel) -> None:
    elements = [base64.b64encode(RED).decode(), base64.b64encode(b"my dog and my cat").decode()]
    tensor = {
        "name": "INPUT",
        "datatype": "BYTES",
        "shape": [2],
        "data": elements,
        "parameters": {"content_type": "base64"},
    }
    status, answer = await infer(model.url, {"id": "r1", "inputs": [tensor]}, "/v2/models/pets/versions/3/infer")
    assert status == 200
    assert (answer["model_name"], answer["model_version"], answer["id"]) == ("pets", "3", "r1")
    probabilities = next(o for o in answer["outputs"] if o["name"] == "PROBABILITIES")
    assert probabilities["shape"] == [2, len(LABELS)]
    rows = [probabilities["data"][i * len(LABELS) : (i + 1) * len(LABELS)] for i in range(2)]
    for row in rows:
        assert sum(row) == pytest.approx(1.0, abs=1e-6)
    assert LABELS[rows[1].index(max(rows[1]))] == "animal"
    assert rows[0][LABELS.index("red")] > rows[0][LABELS.index("blue")]
    # The same input through PostModelOutputs: the same scores, in the same proportions.
    clarifai = await predict(model.url, outputs_request([image_input(RED)]))
    scores = concepts(clarifai.outputs[0])
    assert rows[0][LABELS.index("red")] / rows[0][LABELS.index("bright")] == pytest.approx(
        scores["red"] / scores["bright"], rel=1e-3
    )


async def test_open_inference_protocol_takes_text_and_selected_outputs(model: RunningModel) -> None:
    tensor = {"name": "INPUT", "datatype": "BYTES", "shape": [1, 1], "data": [["what a great pizza"]]}
    status, answer = await infer(model.url, {"inputs": [tensor], "outputs": [{"name": "EMBEDDING"}]})
    assert status == 200
    assert [o["name"] for o in answer["outputs"]] == ["EMBEDDING"]
    assert answer["outputs"][0]["shape"] == [1, 64]


@pytest.mark.parametrize(
    ("tensor", "problem"),
    [
        ({"name": "INPUT", "datatype": "FP32", "shape": [1], "data": [1.0]}, "send BYTES"),
        ({"name": "INPUT", "datatype": "BYTES", "shape": [2], "data": ["a"]}, "holds 2 elements"),
        (
            {
                "name": "INPUT",
                "datatype": "BYTES",
                "shape": [1],
                "data": ["%%"],
                "parameters": {"content_type": "base64"},
            },
            "not valid base64",
        ),
    ],
)
async def test_open_inference_protocol_refuses_what_it_cannot_run(
    model: RunningModel, tensor: dict[str, Any], problem: str
) -> None:
    status, answer = await infer(model.url, {"inputs": [tensor]})
    assert status == 400
    assert problem in answer["error"]


def test_answers_read_as_clarifai_messages() -> None:
    """The answer's JSON parses strictly into the client's MultiOutputResponse (no unknown field)."""
    from google.protobuf.json_format import ParseDict

    from streams.services.model.outputs import ModelService, post_model_outputs

    async def fetch(url: str) -> bytes:
        raise OSError("no download here")

    body = {"inputs": [{"data": {"text": {"raw": "a dog"}}}]}
    status, answer = asyncio.run(post_model_outputs(body, {"model_id": "m"}, ModelService(), fetch))
    assert status == 200
    message = ParseDict(answer, service_pb2.MultiOutputResponse())
    assert MessageToDict(message, preserving_proto_field_name=True)["outputs"][0]["model"]["id"] == "m"
