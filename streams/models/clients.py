"""One call to a model with a batch of inputs, per protocol; each raises :class:`Transient` for what a retry
may fix (429, 5xx, timeouts, connection errors, Clarifai's throttling and internal codes) and
:class:`Refused` for what it cannot (a wrong model, a refused key, a malformed request)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Protocol

import aiohttp
import grpc
import orjson
from clarifai_grpc.grpc.api import service_pb2
from google.protobuf import json_format

from streams.core.models import ModelAnswer, ModelInput, ModelSpec, concepts_of_probabilities

SUCCESS, MIXED_STATUS = 10000, 10010
THROTTLED = 11005
AUTH_CODES = frozenset({11007, 11008, 11009})
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
TRANSIENT_GRPC = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
Outcome = ModelAnswer | str
"""Per input: the model's answer, or why it refused that input."""


class Transient(Exception):
    """A failure a retry may fix."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Refused(Exception):
    """The model refused the whole request; a retry would not help."""


class Client(Protocol):
    async def call(self, items: Sequence[tuple[str, ModelInput]]) -> list[Outcome]:
        """The outcome of each (input id, input), in order."""
        ...

    async def close(self) -> None: ...


def _http_failure(http_status: int, detail: str, retry_after: str | None) -> Exception:
    if http_status == 429 or http_status >= 500:
        after = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
        return Transient(f"HTTP {http_status} {detail}".strip(), after)
    return Refused(f"HTTP {http_status} {detail}".strip())


async def _post_json(session: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]) -> Any:
    """POST ``body`` as JSON; the decoded answer of a 2xx, else the failure raised."""
    try:
        async with session.post(url, data=orjson.dumps(body), headers=headers) as response:
            payload = await response.read()
            if response.status >= 300:
                raise _http_failure(
                    response.status, payload[:300].decode(errors="replace"), response.headers.get("Retry-After")
                )
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise Transient(f"{type(exc).__name__}: {exc}") from None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise Transient(f"{url} answered something that is not JSON") from None


def _clarifai_outcomes(document: dict[str, Any], count: int) -> list[Outcome]:
    """The outcomes of a PostModelOutputs answer (REST JSON, or gRPC as JSON with integer codes)."""
    status = document.get("status") or {}
    code = int(status.get("code") or 0)
    outputs = document.get("outputs") or []
    description = f"{code} {status.get('description', '')} {status.get('details', '')}".strip()
    if code == THROTTLED or 98000 <= code < 100000:
        raise Transient(f"Clarifai status {description}")
    if code in AUTH_CODES or (code not in (SUCCESS, MIXED_STATUS) and len(outputs) != count):
        raise Refused(f"Clarifai status {description}")
    if len(outputs) != count:
        raise Refused(f"the model answered {len(outputs)} outputs for {count} inputs")
    results: list[Outcome] = []
    for output in outputs:
        output_status = output.get("status") or {}
        if int(output_status.get("code") or 0) != SUCCESS:
            results.append(
                f"{output_status.get('code')} {output_status.get('description', '')} "
                f"{output_status.get('details', '')}".strip()
            )
            continue
        data = output.get("data") or {}
        # The answer's own concept dicts, unless one lacks an id or a numeric value (then a checked copy).
        concepts = data.get("concepts") or []
        if not all(type(c) is dict and c.get("id") and type(c.get("value")) is float for c in concepts):
            concepts = [
                {"id": c.get("id") or c["name"], "name": c.get("name") or c["id"], "value": float(c.get("value", 0))}
                for c in concepts
                if isinstance(c, dict) and (c.get("id") or c.get("name"))
            ]
        embeddings = data.get("embeddings") or []
        vector = embeddings[0].get("vector") if embeddings and isinstance(embeddings[0], dict) else None
        results.append(ModelAnswer(concepts, tuple(vector) if vector else None))
    return results


def _clarifai_body(spec: ModelSpec, items: Sequence[tuple[str, ModelInput]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [{"id": input_id, "data": item.clarifai_data()} for input_id, item in items],
        "model": {"output_info": {"output_config": {"max_concepts": spec.max_concepts, "min_value": spec.min_value}}},
    }
    if spec.user_id and spec.app_id:
        body["user_app_id"] = {"user_id": spec.user_id, "app_id": spec.app_id}
    return body


def _clarifai_path(spec: ModelSpec) -> str:
    owner = f"/users/{spec.user_id}/apps/{spec.app_id}" if spec.user_id else ""
    version = f"/versions/{spec.version_id}" if spec.version_id else ""
    return f"/v2{owner}/models/{spec.model_id}{version}/outputs"


def _session(spec: ModelSpec) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=spec.timeout_s),
        connector=aiohttp.TCPConnector(limit=spec.concurrency * 2),
    )


class ClarifaiRest:
    """PostModelOutputs over Clarifai's REST API (JSON)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.session = _session(spec)
        self.url = spec.url + _clarifai_path(spec)

    async def call(self, items: Sequence[tuple[str, ModelInput]]) -> list[Outcome]:
        headers = {"Authorization": f"Key {self.spec.key}", "Content-Type": "application/json"}
        try:
            document = await _post_json(self.session, self.url, _clarifai_body(self.spec, items), headers)
        except Refused as exc:
            raise Refused(f"{self.spec.name}: {exc}") from None
        return _clarifai_outcomes(document if isinstance(document, dict) else {}, len(items))

    async def close(self) -> None:
        await self.session.close()


class ClarifaiGrpc:
    """PostModelOutputs over Clarifai's gRPC API, with the ``clarifai-grpc`` package's messages and stub."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        target = spec.url
        options = [("grpc.max_receive_message_length", 128 * 1024 * 1024)]
        if target.startswith("https://"):
            host = target.removeprefix("https://").rstrip("/")
            address = host if ":" in host else f"{host}:443"
            self.channel = grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(), options=options)
        else:
            self.channel = grpc.aio.insecure_channel(target.removeprefix("http://").rstrip("/"), options=options)
        # The method alone, not the package's V2Stub: its constructor needs the package's channel module.
        self.post_model_outputs = self.channel.unary_unary(
            "/clarifai.api.V2/PostModelOutputs",
            request_serializer=service_pb2.PostModelOutputsRequest.SerializeToString,
            response_deserializer=service_pb2.MultiOutputResponse.FromString,
        )

    async def call(self, items: Sequence[tuple[str, ModelInput]]) -> list[Outcome]:
        spec = self.spec
        body = _clarifai_body(spec, items)
        body["model_id"] = spec.model_id
        if spec.version_id:
            body["version_id"] = spec.version_id
        request = json_format.ParseDict(body, service_pb2.PostModelOutputsRequest())
        try:
            response = await self.post_model_outputs(
                request, metadata=(("authorization", f"Key {spec.key}"),), timeout=spec.timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in TRANSIENT_GRPC:
                raise Transient(f"gRPC {exc.code().name}: {exc.details()}") from None
            raise Refused(f"{spec.name}: gRPC {exc.code().name}: {exc.details()}") from None
        document = json_format.MessageToDict(response, preserving_proto_field_name=True, use_integers_for_enums=True)
        return _clarifai_outcomes(document, len(items))

    async def close(self) -> None:
        await self.channel.close()


class OpenInference:
    """The Open Inference Protocol v2 over REST: one BYTES tensor in, class probabilities (and an embedding)
    out; the labels and input name from the node, else from the model's metadata (read once)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.session = _session(spec)
        version = f"/versions/{spec.version_id}" if spec.version_id else ""
        self.base = f"{spec.url}/v2/models/{spec.model_id}{version}"
        self.labels: tuple[str, ...] | None = spec.labels
        self.input_name: str | None = None

    async def _metadata(self) -> None:
        try:
            async with self.session.get(self.base) as response:
                payload = await response.read()
                if response.status != 200:
                    raise _http_failure(response.status, "reading the model's metadata", None)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from None
        document = orjson.loads(payload) if payload else {}
        inputs = document.get("inputs") or [{}]
        self.input_name = str(inputs[0].get("name") or "INPUT")
        if self.labels is None:
            labels = (document.get("parameters") or {}).get("labels")
            if not isinstance(labels, list) or not labels:
                raise Refused(f"{self.spec.name}: its metadata has no parameters.labels; give `labels` in the node")
            self.labels = tuple(str(label) for label in labels)

    async def _bytes_of(self, item: ModelInput) -> tuple[str, str]:
        """The element and its content type: a text as is, an image as base64 (fetched when given by URL)."""
        if item.kind == "text" and item.text is not None:
            return item.text, "str"
        raw = item.raw if item.raw is not None else await self._download(str(item.url))
        return base64.b64encode(raw).decode(), "base64"

    async def _download(self, url: str) -> bytes:
        if not url.startswith(("http://", "https://")):
            raise Refused(f"cannot fetch {url[:80]!r}: only http(s) URLs are fetched")
        try:
            async with self.session.get(url) as response:
                if response.status != 200:
                    raise Refused(f"fetching {url[:80]} answered HTTP {response.status}")
                body = await response.content.read(MAX_DOWNLOAD_BYTES + 1)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Transient(f"fetching {url[:80]}: {type(exc).__name__}") from None
        if len(body) > MAX_DOWNLOAD_BYTES:
            raise Refused(f"{url[:80]} is over {MAX_DOWNLOAD_BYTES} bytes")
        return body

    async def call(self, items: Sequence[tuple[str, ModelInput]]) -> list[Outcome]:
        if self.input_name is None:
            await self._metadata()
        elements = []
        outcomes: list[Outcome | None] = []
        content_types = set()
        for _, item in items:
            try:
                element, content_type = await self._bytes_of(item)
            except Refused as exc:
                outcomes.append(str(exc))
                continue
            elements.append(element)
            content_types.add(content_type)
            outcomes.append(None)
        if not elements:
            return [str(outcome) for outcome in outcomes]
        body: dict[str, Any] = {
            "inputs": [
                {
                    "name": self.input_name,
                    "datatype": "BYTES",
                    "shape": [len(elements)],
                    "data": elements,
                    # one content type per batch: the gateway batches inline texts and bytes apart
                    "parameters": {"content_type": content_types.pop()},
                }
            ]
        }
        try:
            document = await _post_json(self.session, self.base + "/infer", body, {"Content-Type": "application/json"})
        except Refused as exc:
            raise Refused(f"{self.spec.name}: {exc}") from None
        rows = self._read(document, len(elements))
        answers = iter(rows)
        return [next(answers) if outcome is None else outcome for outcome in outcomes]

    def _read(self, document: Any, count: int) -> list[ModelAnswer]:
        spec, labels = self.spec, self.labels or ()
        outputs = {str(o.get("name")): o for o in (document.get("outputs") or []) if isinstance(o, dict)}
        probabilities = outputs.get(spec.probabilities_output or "") or next(
            (o for o in outputs.values() if len(o.get("data") or []) == count * len(labels)), None
        )
        embedding = outputs.get(spec.embedding_output or "") or next(
            (o for name, o in outputs.items() if name.lower() in ("embedding", "embeddings")), None
        )
        if probabilities is None:
            raise Refused(f"{spec.name}: no output tensor of {count} x {len(labels)} class probabilities")
        values = [float(v) for v in probabilities["data"]]
        width = len(labels)
        vectors = [float(v) for v in embedding["data"]] if embedding is not None else []
        dims = len(vectors) // count if vectors else 0
        return [
            ModelAnswer(
                concepts_of_probabilities(
                    values[i * width : (i + 1) * width],
                    labels,
                    max_concepts=spec.max_concepts,
                    min_value=spec.min_value,
                ),
                tuple(vectors[i * dims : (i + 1) * dims]) if dims else None,
            )
            for i in range(count)
        ]

    async def close(self) -> None:
        await self.session.close()


def client_for(spec: ModelSpec) -> Client:
    """The client of a model's protocol and transport."""
    if spec.protocol == "open_inference":
        return OpenInference(spec)
    return ClarifaiGrpc(spec) if spec.transport == "grpc" else ClarifaiRest(spec)
