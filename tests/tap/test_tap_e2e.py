"""End to end with Clarifai's official client only: a collector created with PostCollectors, predictions made
through the tap with PostModelOutputs (JSON channel and gRPC channel), and the sampled inputs arrive at the
destination exactly once, as ``simulate`` predicts from the events the tap published."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2

from streams.services.management.api import running as control_running
from streams.services.model.service import RunningModel
from streams.services.tap.service import TapSettings, running
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import wait_settled
from tests.conftest import Destination, read_topic
from tests.e2e.management_support import empty_config, new_key, predicted_ids, wait_listed
from tests.faults.conftest import assert_exactly_once

from .clients import grpc_stub, image_input, json_stub, metadata, outputs_request, png, text_input

pytestmark = pytest.mark.kafka

SOURCE = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "general", "caller_user_id": "ann"}


def _collector(key: str) -> Any:
    """Half of what ann asks of the general model, posted into ann/pets with ``key``."""
    return resources_pb2.Collector(
        id="from-tap",
        description="half of ann's predictions",
        pre_queue_random_sample=0.5,
        collector_source=resources_pb2.CollectorSource(
            api_post_model_outputs_collector_source=resources_pb2.APIPostModelOutputsCollectorSource(
                **SOURCE, post_inputs_key_id=key
            )
        ),
    )


async def test_a_collector_made_with_the_client_collects_what_the_tap_sees(
    tmp_path: Path,
    kafka: LocalKafka,
    unique: str,
    model: RunningModel,
    topic_factory: Callable[..., Awaitable[str]],
    destination_factory: Callable[..., Destination],
    worker_factory: Callable[..., Any],
) -> None:
    destination = destination_factory()
    post_key = destination.add_app("ann", "pets")  # ann's PostInputs key, also the key ann predicts with
    bob_key = destination.add_app("bob", "stuff")
    owner = new_key(destination, "ownr", app_id=None)
    predictions = await topic_factory("predictions")
    worker = worker_factory(empty_config(tmp_path))

    async with control_running(kafka.bootstrap_servers, f"{unique}-control", destination.url) as control_url:
        posted = await asyncio.to_thread(
            json_stub(control_url).PostCollectors,
            service_pb2.PostCollectorsRequest(
                user_app_id=resources_pb2.UserAppIDSet(user_id="ann", app_id="pets"), collectors=[_collector(post_key)]
            ),
            metadata=metadata(owner),
        )
    assert posted.status.code == status_code_pb2.SUCCESS, posted.status
    await asyncio.to_thread(wait_listed, [worker], lambda state: len(state) == 1, timeout_s=30, what="the collector")

    settings = TapSettings(
        upstream=model.url,
        upstream_grpc=f"127.0.0.1:{model.grpc_port}",
        grpc_port=0,
        broker=kafka.bootstrap_servers,
        topic=predictions,
        auth_url=destination.url,
    )
    async with running(settings) as tap:
        assert tap.grpc_port is not None
        calls: list[tuple[Any, list[Any], str]] = [
            (json_stub(tap.url), [text_input(f"ann's review {i}: the pizza was great") for i in range(20)], post_key),
            (grpc_stub(tap.grpc_port), [image_input(png((20 * i, 90, 160))) for i in range(10)], post_key),
            (json_stub(tap.url), [text_input(f"bob's review {i}") for i in range(10)], bob_key),
        ]
        for stub, inputs, key in calls:
            request = outputs_request(inputs, model_id="general", user_id="clarifai", app_id="main")
            answer = await asyncio.to_thread(stub.PostModelOutputs, request, metadata=metadata(key))
            assert answer.status.code == status_code_pb2.SUCCESS
        events = await read_topic(kafka.bootstrap_servers, predictions, expect=40, timeout_s=60)

    assert sorted(e["caller"]["user_id"] for e in events) == ["ann"] * 30 + ["bob"] * 10
    lines = [orjson.dumps(event) for event in events]
    collector = {"id": "from-tap", "source": SOURCE, "destination": {"base_url": destination.url}}
    expected = await predicted_ids(tmp_path, [{**collector, "pre_queue_random_sample": 0.5}], lines)
    assert 0 < len(expected) < 30
    snapshot = await asyncio.to_thread(wait_settled, [worker], events=40, timeout_s=90)
    assert_exactly_once(destination, expected)
    assert snapshot["collectors"]["ann/pets/from-tap"]["posted"] == len(expected)
