"""PostModelOutputs of the reference model, on JSON documents in Clarifai's shape (REST and gRPC share it).

The answer depends on the request alone: output and input ids are derived from the model, its version and
the input, and no timestamp is added, so the same request gets the same bytes back.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from streams.services.model.predict import (
    EMBEDDING_DIMENSIONS,
    MODEL_VERSION_ID,
    Prediction,
    UnreadableInput,
    content_id,
    predict_image,
    predict_text,
    predict_texts,
)
from streams.services.outputs_api import FAILURE, MIXED_STATUS, SUCCESS

INPUT_DOWNLOAD_FAILED = 30002
INPUT_INVALID_ARGUMENT = 30104
MAX_INPUTS = 128
DEFAULT_MAX_CONCEPTS = 20

Fetch = Callable[[str], Awaitable[bytes]]
"""Download the bytes at a URL (raises ``OSError`` or ``asyncio.TimeoutError`` when it cannot)."""


@dataclass(frozen=True, slots=True)
class ModelService:
    """Where the model answers from and how slowly."""

    user_id: str = "clarifai"
    app_id: str = "main"
    latency_s: float = 0.0
    """Added to every call (benchmarks use it to stand in for a real model's inference time)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The model a request names, after the path, the body's ``user_app_id`` and the defaults."""

    user_id: str
    app_id: str
    model_id: str
    version_id: str


def member(document: Any, name: str) -> dict[str, Any]:
    """``document[name]`` when both are JSON objects, else an empty one."""
    value = document.get(name) if isinstance(document, dict) else None
    return value if isinstance(value, dict) else {}


def status(code: int, description: str, details: str = "") -> dict[str, Any]:
    """A Clarifai Status message."""
    document: dict[str, Any] = {"code": code, "description": description}
    if details:
        document["details"] = details
    return document


def refusal(details: str) -> tuple[int, dict[str, Any]]:
    """A whole request refused (HTTP 400, FAILURE), saying what to fix."""
    return 400, {"status": status(FAILURE, "Failure", details)}


def target_of(body: Mapping[str, Any], path: Mapping[str, str], service: ModelService) -> Target:
    """The model named by the path, else by the body (``user_app_id``, ``model``), else the service's defaults."""
    user_app, model = member(body, "user_app_id"), member(body, "model")
    version = member(model, "model_version")
    return Target(
        user_id=path.get("user_id") or user_app.get("user_id") or service.user_id,
        app_id=path.get("app_id") or user_app.get("app_id") or service.app_id,
        model_id=path.get("model_id") or model.get("id") or path.get("id") or "reference",
        version_id=path.get("version_id") or body.get("version_id") or version.get("id") or MODEL_VERSION_ID,
    )


async def _predict_input(data: Mapping[str, Any], fetch: Fetch) -> Prediction:
    """The prediction for one input's ``data`` (raises ``ValueError`` or ``OSError`` with the reason)."""
    image, text = member(data, "image"), member(data, "text")
    if image.get("base64"):
        try:
            raw = base64.b64decode(image["base64"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ValueError("data.image.base64 is not valid base64") from None
        return predict_image(raw)
    if image.get("url"):
        return predict_image(await fetch(str(image["url"])))
    if isinstance(text.get("raw"), str):
        return predict_text(text["raw"])
    if text.get("url"):
        return predict_text((await fetch(str(text["url"]))).decode("utf-8", errors="replace"))
    raise ValueError("data needs data.image.base64, data.image.url, data.text.raw or data.text.url")


def _output_config(body: Mapping[str, Any]) -> tuple[int, float]:
    config = member(member(member(body, "model"), "output_info"), "output_config")
    max_concepts = config.get("max_concepts") or DEFAULT_MAX_CONCEPTS
    min_value = config.get("min_value") or 0.0
    return int(max_concepts), float(min_value)


def _inline_text(raw: Any) -> str | None:
    """The input's ``data.text.raw`` when it has no image (such inputs are predicted as one batch)."""
    data = member(raw, "data")
    text = member(data, "text").get("raw")
    return text if isinstance(text, str) and not member(data, "image") else None


async def _output(
    index: int,
    raw: Any,
    target: Target,
    fetch: Fetch,
    config: tuple[int, float],
    predicted: Prediction | None = None,
) -> tuple[bool, dict[str, Any]]:
    """One output (and whether it succeeded) for the request's ``index``-th input (``predicted``: its prediction,
    made with the batch's other texts)."""
    data = member(raw, "data")
    input_id = (raw.get("id") if isinstance(raw, dict) else None) or content_id(
        orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    )
    output: dict[str, Any] = {
        "id": content_id(target.model_id, target.version_id, input_id, str(index)),
        "status": status(SUCCESS, "Ok"),
        "model": {
            "id": target.model_id,
            "name": target.model_id,
            "user_id": target.user_id,
            "app_id": target.app_id,
            "model_version": {"id": target.version_id},
        },
        "input": {"id": input_id, "data": data},
    }
    try:
        prediction = predicted if predicted is not None else await _predict_input(data, fetch)
    except (UnreadableInput, ValueError) as exc:
        output["status"] = status(INPUT_INVALID_ARGUMENT, "Invalid input argument", f"inputs[{index}]: {exc}")
        return False, output
    except (OSError, TimeoutError) as exc:
        output["status"] = status(INPUT_DOWNLOAD_FAILED, "Input download failed", f"inputs[{index}]: {exc}")
        return False, output
    max_concepts, min_value = config
    output["data"] = {
        "concepts": prediction.concepts(max_concepts=max_concepts, min_value=min_value),
        "embeddings": [{"vector": prediction.embedding, "num_dimensions": EMBEDDING_DIMENSIONS}],
    }
    return True, output


async def post_model_outputs(
    body: Any, path: Mapping[str, str], service: ModelService, fetch: Fetch
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and Clarifai answer of PostModelOutputs for a decoded request ``body``."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        return refusal('send a JSON object {"inputs": [{"data": {"image": {...}} or {"text": {...}}}, ...]}')
    inputs: list[Any] = body["inputs"]
    if not 1 <= len(inputs) <= MAX_INPUTS:
        return refusal(f"{len(inputs)} inputs sent; send 1 to {MAX_INPUTS} inputs per request")
    if service.latency_s:
        await asyncio.sleep(service.latency_s)
    target = target_of(body, path, service)
    config = _output_config(body)
    texts = {i: text for i, raw in enumerate(inputs) if (text := _inline_text(raw)) is not None}
    predicted = dict(zip(texts, predict_texts(list(texts.values())), strict=True))
    outputs_of = [_output(i, raw, target, fetch, config, predicted.get(i)) for i, raw in enumerate(inputs)]
    if len(predicted) == len(inputs):  # nothing to fetch: no task per input
        results = [await output for output in outputs_of]
    else:
        results = await asyncio.gather(*outputs_of)
    succeeded = sum(1 for ok, _ in results if ok)
    outputs = [output for _, output in results]
    if succeeded == len(outputs):
        return 200, {"status": status(SUCCESS, "Ok"), "outputs": outputs}
    if succeeded == 0:
        return 400, {
            "status": status(FAILURE, "Failure", "no input could be predicted; see each output's status"),
            "outputs": outputs,
        }
    return 200, {
        "status": status(MIXED_STATUS, "Mixed status", f"{succeeded} of {len(outputs)} inputs predicted"),
        "outputs": outputs,
    }
