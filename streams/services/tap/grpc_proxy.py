"""The tap's gRPC server: a byte-level pass-through of Clarifai's V2 service that taps ``V2/PostModelOutputs``.

Every V2 call (unary or streaming) is forwarded to the upstream as the bytes the caller sent, with the
caller's metadata and deadline; the upstream's messages, metadata and status (an error too) come back
unchanged. After a PostModelOutputs answer went out, its request and answer are decoded with the
``clarifai-grpc`` messages and published as prediction events (:mod:`streams.services.tap.tap`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from clarifai_grpc.grpc.api import service_pb2
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from streams.services.clarifai_grpc import MAX_MESSAGE_BYTES, METHODS, SERVICE, request_key
from streams.services.tap.tap import Tap

TAPPED_METHOD = "PostModelOutputs"
_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


def upstream_channel(target: str) -> grpc.aio.Channel:
    """A channel to ``host:port`` (plain) or ``https://host[:port]`` (TLS, port 443 by default)."""
    if target.startswith("https://"):
        address = target.removeprefix("https://").rstrip("/")
        address = address if ":" in address else f"{address}:443"
        return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(), options=_OPTIONS)
    return grpc.aio.insecure_channel(target.removeprefix("http://").rstrip("/"), options=_OPTIONS)


def _forwarded(context: grpc.aio.ServicerContext) -> list[tuple[str, str | bytes]]:
    """The caller's metadata, less what gRPC itself sets."""
    return [
        (name, value)
        for name, value in context.invocation_metadata() or ()
        if not name.startswith((":", "grpc-")) and name not in ("user-agent", "content-type", "te")
    ]


def _as_json(message: Message) -> dict[str, Any]:
    """A message as Clarifai's REST API answers it: proto field names, status codes as numbers."""
    document: dict[str, Any] = json_format.MessageToDict(
        message, preserving_proto_field_name=True, use_integers_for_enums=True
    )
    return document


async def _mirror(call: Any, context: grpc.aio.ServicerContext) -> None:
    """Give the caller the upstream call's initial metadata."""
    initial = await call.initial_metadata()
    if initial:
        await context.send_initial_metadata(tuple(initial))


async def _finish(call: Any, context: grpc.aio.ServicerContext) -> None:
    """Give the caller the upstream call's trailing metadata."""
    trailing = await call.trailing_metadata()
    if trailing:
        context.set_trailing_metadata(tuple(trailing))


async def _abort_like(error: grpc.aio.AioRpcError, context: grpc.aio.ServicerContext) -> None:
    """End the caller's call with the upstream's error, unchanged."""
    await context.abort(error.code(), error.details() or "", error.trailing_metadata() or ())


class TapProxy(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Handlers for every V2 call, forwarding to ``channel``; PostModelOutputs is tapped."""

    def __init__(self, channel: grpc.aio.Channel, tap: Tap) -> None:
        self._channel = channel
        self._tap = tap

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        prefix = f"/{SERVICE.full_name}/"
        name = details.method.removeprefix(prefix)
        method = METHODS.get(name) if details.method.startswith(prefix) else None
        client_streaming = bool(method is not None and method.client_streaming)
        if method is not None and method.server_streaming:
            return self._streams(details.method, client_streaming)
        return self._answers(details.method, client_streaming, tapped=name == TAPPED_METHOD)

    def _answers(self, path: str, client_streaming: bool, *, tapped: bool) -> grpc.RpcMethodHandler:
        """A call with one answer (calls the package does not know are taken as such), forwarded."""
        upstream = (self._channel.stream_unary if client_streaming else self._channel.unary_unary)(path)

        async def forward(request: Any, context: grpc.aio.ServicerContext) -> bytes:
            key = request_key(context) or ""
            if tapped:
                self._tap.seen(key)
            call = upstream(request, metadata=_forwarded(context), timeout=context.time_remaining())
            try:
                response: bytes = await call
                await _mirror(call, context)
                await _finish(call, context)
            except grpc.aio.AioRpcError as error:
                if tapped:
                    self._tap.failed()
                await _abort_like(error, context)
                raise  # not reached: abort raises
            if tapped:  # after this handler returned and the answer is on its way
                asyncio.get_running_loop().call_soon(self._capture, key, request, response)
            return response

        make = grpc.stream_unary_rpc_method_handler if client_streaming else grpc.unary_unary_rpc_method_handler
        return make(forward)

    def _streams(self, path: str, client_streaming: bool) -> grpc.RpcMethodHandler:
        """A call answering a stream, forwarded message by message (not tapped)."""
        upstream = (self._channel.stream_stream if client_streaming else self._channel.unary_stream)(path)

        async def forward(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            call = upstream(request, metadata=_forwarded(context), timeout=context.time_remaining())
            try:
                await _mirror(call, context)
                async for message in call:
                    yield message
                await _finish(call, context)
            except grpc.aio.AioRpcError as error:
                await _abort_like(error, context)

        make = grpc.stream_stream_rpc_method_handler if client_streaming else grpc.unary_stream_rpc_method_handler
        return make(forward)

    def _capture(self, key: str, request: bytes, response: bytes) -> None:
        """Decode a PostModelOutputs call that was answered, and hand it to the tap."""
        try:
            request_message = service_pb2.PostModelOutputsRequest.FromString(request)
            answer_message = service_pb2.MultiOutputResponse.FromString(response)
        except DecodeError as exc:
            self._tap.unreadable(f"gRPC {TAPPED_METHOD}: {exc}")
            return
        self._tap.answered(key, _as_json(request_message), _as_json(answer_message))


@asynccontextmanager
async def serving(tap: Tap, upstream: str, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    """Serve the tap's gRPC pass-through on host:port (0 = any free port) while the block runs; yields the
    bound port."""
    channel = upstream_channel(upstream)
    server = grpc.aio.server(options=_OPTIONS)
    server.add_generic_rpc_handlers((TapProxy(channel, tap),))
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        await channel.close()
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    await server.start()
    try:
        yield bound
    finally:
        await server.stop(grace=1.0)
        with contextlib.suppress(Exception):
            await channel.close()
