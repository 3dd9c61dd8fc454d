"""Clarifai's V2 gRPC service, served with grpcio's asyncio server and the official ``clarifai-grpc`` package.

The messages and the service class come from the package (its protos are not copied). What a service needs:

* :func:`serving`: a started ``grpc.aio`` server holding one V2 servicer, for the length of a block;
* :class:`V2Base`: a V2 servicer answering every call its subclass does not implement with Clarifai's
  NOT_IMPLEMENTED status (10040) in that call's own response message, and any V2 call the package does not
  know (a newer client's) the same way: a client always gets a status it can name, never a broken channel;
* :func:`request_key`: the clear key of the ``authorization: Key <key>`` metadata, as the client sends it;
* :func:`to_json` / :func:`from_json`: messages to and from the JSON Clarifai's REST API speaks;
* :class:`RestBridge`: answers chosen V2 calls by calling the service's own REST API through the call's HTTP
  bindings (the protos' ``google.api.http`` options), so one implementation serves both transports.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import aiohttp
import grpc
import orjson
from clarifai_grpc.grpc.api import service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2, status_pb2
from google.api import annotations_pb2
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

log = logging.getLogger(__name__)

SERVICE = service_pb2.DESCRIPTOR.services_by_name["V2"]
METHODS: dict[str, MethodDescriptor] = {method.name: method for method in SERVICE.methods}
MAX_MESSAGE_BYTES = 128 * 1024 * 1024
_PATH_FIELD = re.compile(r"\{([^}]+)\}")


def code_of(name: str) -> int:
    """The number of a Clarifai StatusCode by name (a KeyError for a name the enum does not have)."""
    return int(status_code_pb2.StatusCode.Value(name))


def status(code: int, description: str, details: str = "") -> status_pb2.Status:
    """A Clarifai Status message."""
    return status_pb2.Status(code=code, description=description, details=details)


def response_class(method: MethodDescriptor) -> type[Message]:
    """The generated response message class of a V2 call."""
    cls: type[Message] = message_factory.GetMessageClass(method.output_type)
    return cls


def answer(method: MethodDescriptor, code: int, description: str, details: str = "") -> Message:
    """The call's response message carrying only a status (every V2 response has ``status`` as field 1)."""
    response = response_class(method)()
    response.status.CopyFrom(status(code, description, details))
    return response


def to_json(message: Message) -> dict[str, Any]:
    """A message as Clarifai's REST API spells it: proto field names, enums by name, defaults left out."""
    data: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return data


def from_json(cls: type[Message], data: Mapping[str, Any]) -> Message:
    """A message from REST JSON; fields the message does not have are ignored, as the official client does."""
    return json_format.ParseDict(data, cls(), ignore_unknown_fields=True)


def request_key(context: grpc.aio.ServicerContext) -> str | None:
    """The clear key of the call's ``authorization: Key <key>`` metadata, or None when there is none."""
    for name, value in context.invocation_metadata() or ():
        if name.lower() == "authorization" and isinstance(value, str):
            scheme, _, key = value.partition(" ")
            key = key.strip()
            return key if scheme.lower() == "key" and key else None
    return None


def _not_implemented(method: MethodDescriptor) -> Callable[..., Any]:
    details = f"{method.name} is not served here"

    def reply() -> Message:
        return answer(method, code_of("NOT_IMPLEMENTED"), "Not implemented", details)

    if method.server_streaming:

        async def streaming(self: V2Base, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Message]:
            yield reply()

        return streaming

    async def unary(self: V2Base, request: Any, context: grpc.aio.ServicerContext) -> Message:
        return reply()

    return unary


class V2Base(service_pb2_grpc.V2Servicer):  # type: ignore[misc]
    """A V2 servicer whose every call answers NOT_IMPLEMENTED until a subclass (or instance) defines it."""


for _method in SERVICE.methods:
    setattr(V2Base, _method.name, _not_implemented(_method))


class _UnknownV2Calls(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Calls of the V2 service the package does not know: a response whose field 1 is a NOT_IMPLEMENTED
    status, which every V2 response message reads as its ``status``."""

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        prefix = f"/{SERVICE.full_name}/"
        if not details.method.startswith(prefix):
            return None
        name = details.method.removeprefix(prefix)
        body: bytes = service_pb2.MultiInputResponse(
            status=status(code_of("NOT_IMPLEMENTED"), "Not implemented", f"{name} is not served here")
        ).SerializeToString(deterministic=True)

        async def reply(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return body

        return grpc.unary_unary_rpc_method_handler(reply)


@asynccontextmanager
async def serving(servicer: V2Base, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    """Serve ``servicer`` over gRPC (no TLS) on host:port (0 = an ephemeral port) while the block runs;
    yields the bound port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    service_pb2_grpc.add_V2Servicer_to_server(servicer, server)
    server.add_generic_rpc_handlers((_UnknownV2Calls(),))
    bound = server.add_insecure_port(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    await server.start()
    try:
        yield bound
    finally:
        await server.stop(grace=1.0)


# --- answering V2 calls through the service's REST API ------------------------------------------------------


def http_bindings(method: MethodDescriptor) -> list[tuple[str, str, bool]]:
    """The call's HTTP bindings as (verb, path template, has a body), the primary one first."""
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    found = []
    for binding in (rule, *rule.additional_bindings):
        verb = binding.WhichOneof("pattern")
        found.append((verb.upper(), getattr(binding, verb), bool(binding.body)))
    return found


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def pick_binding(method: MethodDescriptor, request: Mapping[str, Any]) -> tuple[str, str, bool, list[str]]:
    """The binding whose path fields the request fills most (as the official JSON client picks it):
    (verb, path, has a body, the path's fields). A ``user_id`` left empty beside an app is ``me``."""
    best: tuple[str, str, bool, list[str]] | None = None
    best_count = -1
    for verb, template, has_body in http_bindings(method):
        fields = _PATH_FIELD.findall(template)
        path = template
        for field in fields:
            value = _lookup(request, field)
            if not value and field.endswith("user_id"):
                value = "me"
            if not value or not isinstance(value, str):
                break
            path = path.replace("{" + field + "}", quote(value, safe=""))
        else:
            if len(fields) > best_count:
                best, best_count = (verb, path, has_body, fields), len(fields)
    if best is None:
        raise ValueError(f"{method.name} needs one of the fields {http_bindings(method)}")
    return best


def query_params(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A request as GET parameters: nested fields dotted, lists repeated, booleans ``true``/``false``."""
    params: list[tuple[str, str]] = []
    for name, value in data.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            params.extend(query_params(value, key + "."))
        elif isinstance(value, list):
            params.extend((key, _scalar(item)) for item in value)
        else:
            params.append((key, _scalar(value)))
    return params


def _scalar(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class RestBridge(V2Base):
    """A V2 servicer answering ``methods`` by calling the same service's REST API at ``base_url``.

    The request goes out as the official JSON client sends it (the binding chosen by the fields set, the body
    or the query holding the rest, the ``authorization`` metadata as the header); the REST answer, whatever
    its HTTP status, becomes the call's response message (the Clarifai status is in it, as on Clarifai's
    gRPC API). Fields the message does not have are dropped.
    """

    def __init__(self, base_url: str, methods: Iterable[str], *, timeout_s: float = 30.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        for name in methods:
            setattr(self, name, self._bridge(METHODS[name]))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _bridge(self, method: MethodDescriptor) -> Callable[[Message, grpc.aio.ServicerContext], Any]:
        async def call(request: Message, context: grpc.aio.ServicerContext) -> Message:
            return await self.forward(method, request, context)

        return call

    async def forward(self, method: MethodDescriptor, request: Message, context: grpc.aio.ServicerContext) -> Message:
        """One call through the REST API."""
        data = to_json(request)
        try:
            verb, path, has_body, fields = pick_binding(method, data)
        except ValueError as exc:
            return answer(method, code_of("CONN_INVALID_REQUEST"), "Invalid request", str(exc))
        for field in fields:
            if "." not in field:
                data.pop(field, None)
        headers = {"Content-Type": "application/json"}
        key = request_key(context)
        if key is not None:
            headers["Authorization"] = f"Key {key}"
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = self._base_url + path
        try:
            async with self._session.request(
                verb,
                url,
                data=orjson.dumps(data) if has_body else None,
                params=None if has_body else query_params(data),
                headers=headers,
            ) as response:
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("%s: %s %s did not answer (%s)", method.name, verb, url, type(exc).__name__)
            return answer(method, code_of("RPC_SERVER_UNAVAILABLE"), "Service unavailable", f"{type(exc).__name__}")
        try:
            return from_json(response_class(method), orjson.loads(body))
        except (orjson.JSONDecodeError, json_format.ParseError, TypeError) as exc:
            log.warning("%s: %s %s answered what %s cannot hold: %s", method.name, verb, url, method.name, exc)
            return answer(method, code_of("INTERNAL_SERVER_ISSUE"), "Internal error", "the service's answer is invalid")


@asynccontextmanager
async def bridged(rest_url: str, methods: Iterable[str], host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    """Serve ``methods`` over gRPC by calling the REST API at ``rest_url`` (see :class:`RestBridge`), every
    other V2 call answering NOT_IMPLEMENTED, while the block runs; yields the bound port."""
    bridge = RestBridge(rest_url, methods)
    try:
        async with serving(bridge, host, port) as bound:
            yield bound
    finally:
        await bridge.close()
