"""End to end with Clarifai's official client: a collector created over gRPC, in Clarifai's spelling (no
destination: the app of the request, at the server's destination URL), is run by a worker, and the sampled
inputs arrive at the destination, exactly once."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2

from streams.tools.localstack import free_port, wait_settled
from tests.e2e.management_support import (
    APP,
    MODEL,
    USER,
    collector_body,
    empty_config,
    event_lines,
    listed,
    new_key,
    predicted_ids,
    wait_listed,
    wait_ready,
)
from tests.faults.conftest import assert_exactly_once

pytestmark = pytest.mark.kafka


async def test_a_collector_made_with_the_official_client_collects(
    tmp_path, topic_factory, producer_factory, destination_factory, worker_factory, control_apis
) -> None:
    destination = destination_factory()
    post_key = destination.add_app(USER, APP)
    owner_key = new_key(destination, "ownr", app_id=None)
    grpc_port = free_port()
    control_apis.start(destination, "--grpc-port", str(grpc_port))
    predictions = await topic_factory("predictions")
    worker = worker_factory(empty_config(tmp_path))
    wait_ready([worker])

    channel = ClarifaiChannel.get_insecure_grpc_channel(base="127.0.0.1", port=grpc_port)
    await asyncio.to_thread(grpc.channel_ready_future(channel).result, timeout=30)
    stub = service_pb2_grpc.V2Stub(channel)
    request = service_pb2.PostCollectorsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=USER, app_id=APP),
        collectors=[
            resources_pb2.Collector(
                id="sampled",
                pre_queue_random_sample=0.25,
                collector_source=resources_pb2.CollectorSource(
                    api_post_model_outputs_collector_source=resources_pb2.APIPostModelOutputsCollectorSource(
                        **MODEL, post_inputs_key_id=post_key
                    )
                ),
            )
        ],
    )
    reply = await asyncio.to_thread(stub.PostCollectors, request, metadata=(("authorization", f"Key {owner_key}"),))
    assert reply.status.code == status_code_pb2.SUCCESS, reply.status
    wait_listed([worker], lambda state: "ann/pets/sampled" in state, timeout_s=10, what="the worker to load it")
    assert listed(worker)["ann/pets/sampled"]["status"] == "active"

    batch = event_lines(400, start=1, seed=18)
    await producer_factory(predictions, batch)
    wait_settled([worker], events=len(batch), timeout_s=60)
    same_rule = collector_body("sampled", destination.url, "offline", pre_queue_random_sample=0.25)
    expected = await predicted_ids(tmp_path, [same_rule], batch)
    assert 50 < len(expected) < 150, "a quarter of 400"
    assert_exactly_once(destination, expected)
    channel.close()
