"""The Open Inference Protocol v2 (KServe, Triton, MLServer) for the reference model, on JSON documents.

One input tensor of datatype BYTES, one element per input: an encoded image or a UTF-8 text, given as a
string (``parameters.content_type`` ``"base64"`` for base64-encoded bytes, as images must be in JSON). Two
output tensors: ``PROBABILITIES`` (FP32, ``[N, len(LABELS)]``, class probabilities in the order of the
metadata's ``parameters.labels``) and ``EMBEDDING`` (FP32, ``[N, 64]``, unit length).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from typing import Any

from streams.services.model.outputs import member
from streams.services.model.predict import (
    EMBEDDING_DIMENSIONS,
    LABELS,
    MODEL_VERSION_ID,
    predict_bytes,
    predict_text,
    predict_texts,
)

INPUT_NAME = "INPUT"
PROBABILITIES = "PROBABILITIES"
EMBEDDING = "EMBEDDING"
PLATFORM = "collectors-reference"


class InferenceError(ValueError):
    """A request the model cannot run; the message says what to fix (answered as HTTP 400 ``{"error"}``)."""


def metadata(name: str, version: str | None = None) -> dict[str, Any]:
    """Model metadata: its tensors, and its labels (``parameters.labels``) in probability order."""
    return {
        "name": name,
        "versions": [version or MODEL_VERSION_ID],
        "platform": PLATFORM,
        "inputs": [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, len(LABELS)]},
            {"name": EMBEDDING, "datatype": "FP32", "shape": [-1, EMBEDDING_DIMENSIONS]},
        ],
        "parameters": {"labels": list(LABELS)},
    }


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [item for element in data for item in _flatten(element)]
    return [data]


def _elements(tensor: Mapping[str, Any]) -> list[Any]:
    """The tensor's elements, checked against its datatype and shape."""
    if tensor.get("datatype") != "BYTES":
        raise InferenceError(f"input {tensor.get('name')!r} has datatype {tensor.get('datatype')!r}; send BYTES")
    elements = _flatten(tensor.get("data"))
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise InferenceError("input shape must be a list of non-negative integers, such as [N]")
    if math.prod(shape) != len(elements):
        raise InferenceError(f"input shape {shape} holds {math.prod(shape)} elements but data has {len(elements)}")
    if not elements:
        raise InferenceError("input data is empty; send one element per input")
    return elements


def _predict(element: Any, content_type: str | None) -> tuple[list[float], list[float]]:
    if not isinstance(element, str):
        raise InferenceError("each BYTES element must be a string (base64 with content_type 'base64')")
    if content_type == "base64":
        try:
            prediction = predict_bytes(base64.b64decode(element, validate=True))
        except (binascii.Error, ValueError):
            raise InferenceError("an element is not valid base64 (the input's content_type is 'base64')") from None
    elif content_type in (None, "str", "bytes"):
        prediction = predict_text(element) if content_type == "str" else predict_bytes(element.encode())
    else:
        raise InferenceError(f"content_type {content_type!r} is not supported; use 'base64', 'str' or 'bytes'")
    return prediction.probabilities(), prediction.embedding


def infer(name: str, version: str | None, body: Any) -> dict[str, Any]:
    """The inference response for a decoded request ``body`` (raises :class:`InferenceError`)."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or len(body["inputs"]) != 1:
        raise InferenceError('send {"inputs": [{"name": "INPUT", "datatype": "BYTES", "shape": [N], "data": [...]}]}')
    tensor = body["inputs"][0]
    if not isinstance(tensor, dict):
        raise InferenceError("the input tensor must be an object")
    content_type = member(tensor, "parameters").get("content_type")
    elements = _elements(tensor)
    if content_type == "str" and all(isinstance(element, str) for element in elements):  # texts: one batch
        rows = [(prediction.probabilities(), prediction.embedding) for prediction in predict_texts(elements)]
    else:
        rows = [_predict(element, content_type) for element in elements]
    produced = {
        PROBABILITIES: {
            "name": PROBABILITIES,
            "datatype": "FP32",
            "shape": [len(rows), len(LABELS)],
            "data": [value for probabilities, _ in rows for value in probabilities],
            "parameters": {"labels": list(LABELS)},
        },
        EMBEDDING: {
            "name": EMBEDDING,
            "datatype": "FP32",
            "shape": [len(rows), EMBEDDING_DIMENSIONS],
            "data": [value for _, embedding in rows for value in embedding],
        },
    }
    requested = body.get("outputs")
    names = (
        [str(item.get("name")) for item in requested if isinstance(item, dict)] if isinstance(requested, list) else []
    )
    unknown = [n for n in names if n not in produced]
    if unknown:
        raise InferenceError(f"unknown outputs {unknown}; this model has {PROBABILITIES} and {EMBEDDING}")
    response: dict[str, Any] = {
        "model_name": name,
        "model_version": version or MODEL_VERSION_ID,
        "outputs": [produced[n] for n in (names or list(produced))],
    }
    if isinstance(body.get("id"), str):
        response["id"] = body["id"]
    return response
