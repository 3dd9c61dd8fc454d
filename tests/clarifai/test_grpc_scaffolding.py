"""The gRPC scaffolding: calls a service does not implement, and calls the package does not know, answer a
Clarifai status over a working channel; the REST bridge picks bindings as the official JSON client does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc

from streams.services.clarifai_grpc import METHODS, V2Base, pick_binding, query_params, request_key, serving

NOT_IMPLEMENTED = 10040


class EchoKey(V2Base):
    """Implements one call: GetCollector answers the caller's key as the collector's id."""

    async def GetCollector(
        self, request: service_pb2.GetCollectorRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.SingleCollectorResponse:
        response = service_pb2.SingleCollectorResponse(collector=resources_pb2.Collector(id=str(request_key(context))))
        response.status.code = 10000
        return response


@pytest.fixture
async def stub() -> AsyncIterator[service_pb2_grpc.V2Stub]:
    async with serving(EchoKey()) as port:
        channel = ClarifaiChannel.get_aio_insecure_grpc_channel("127.0.0.1", port)
        async with channel:
            yield service_pb2_grpc.V2Stub(channel)


async def test_an_implemented_call_reads_the_key_metadata(stub: service_pb2_grpc.V2Stub) -> None:
    reply = await stub.GetCollector(service_pb2.GetCollectorRequest(), metadata=(("authorization", "Key k-123"),))
    assert (reply.status.code, reply.collector.id) == (10000, "k-123")
    reply = await stub.GetCollector(service_pb2.GetCollectorRequest())
    assert reply.collector.id == "None"


async def test_every_other_call_answers_not_implemented(stub: service_pb2_grpc.V2Stub) -> None:
    reply = await stub.ListApps(service_pb2.ListAppsRequest())
    assert reply.status.code == NOT_IMPLEMENTED
    assert "ListApps" in reply.status.details
    streamed = [item async for item in stub.StreamLogEntries(service_pb2.StreamLogEntriesRequest())]
    assert [item.status.code for item in streamed] == [NOT_IMPLEMENTED]


async def test_a_call_the_package_does_not_know_answers_not_implemented() -> None:
    async with serving(EchoKey()) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            "/clarifai.api.V2/PostSomethingNewer",
            request_serializer=service_pb2.PostInputsRequest.SerializeToString,
            response_deserializer=service_pb2.MultiInputResponse.FromString,
        )
        reply = await call(service_pb2.PostInputsRequest())
    assert reply.status.code == NOT_IMPLEMENTED
    assert "PostSomethingNewer" in reply.status.details


def test_bindings_are_picked_like_the_json_client() -> None:
    post = METHODS["PostCollectors"]
    with_app = {"user_app_id": {"user_id": "alice", "app_id": "photos"}, "collectors": []}
    assert pick_binding(post, with_app)[:3] == ("POST", "/v2/users/alice/apps/photos/collectors", True)
    assert pick_binding(post, {"collectors": []})[:3] == ("POST", "/v2/collectors", True)
    assert pick_binding(post, {"user_app_id": {"app_id": "photos"}})[1] == "/v2/users/me/apps/photos/collectors"
    get = METHODS["GetCollector"]
    verb, path, has_body, fields = pick_binding(get, {**with_app, "collector_id": "a b"})
    assert (verb, path, has_body) == ("GET", "/v2/users/alice/apps/photos/collectors/a%20b", False)
    assert "collector_id" in fields
    with pytest.raises(ValueError, match="GetCollector"):
        pick_binding(get, {})


def test_query_params_flatten_like_the_json_client() -> None:
    params = query_params({"user_app_id": {"user_id": "u", "app_id": "a"}, "page": 2, "ids": ["x", "y"], "on": True})
    assert params == [
        ("user_app_id.user_id", "u"),
        ("user_app_id.app_id", "a"),
        ("page", "2"),
        ("ids", "x"),
        ("ids", "y"),
        ("on", "true"),
    ]
