"""The reference destination with Clarifai's official client over its JSON and gRPC channels: PostInputs,
ListInputs, GetInput and MyScopes, with the pinned release (in this process) and with the current release
(in a process of its own, whose path holds it: one process cannot import two releases)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import service_pb2, service_pb2_grpc

from streams.services.destination.store import Store
from streams.tools.localstack import free_port, start_destination

from .conftest import CHANNELS, CURRENT_CLARIFAI_GRPC, Keys, Service
from .inputs_client import exercise

SCRIPT = Path(__file__).with_name("inputs_client.py")


def arguments(destination: Service, keys: Keys, channel: str, prefix: str) -> dict[str, Any]:
    return {
        "channel": channel,
        "url": destination.url,
        "host": urlsplit(destination.url).hostname,
        "port": destination.grpc_port,
        "post_key": keys.post,
        "list_key": keys.list_only,
        "user_id": "alice",
        "app_id": "photos",
        "prefix": prefix,
    }


def check(seen: dict[str, Any], prefix: str) -> None:
    """What the client saw: every call answered as Clarifai's API answers it."""
    assert seen["posted"] == [10000, [30000, 30000]]  # SUCCESS, INPUT_SUCCESS each
    assert seen["again"] == [10010, [30100]]  # MIXED_STATUS: INPUT_DUPLICATE, not stored again
    assert seen["wrong_key"] == 11008
    assert seen["listed"] == [10000, [f"{prefix}-image", f"{prefix}-text"]]
    assert seen["got"] == [10000, {"image": {"url": "https://img.example/1.jpg"}, "metadata": {"camera": "north-gate"}}]
    assert seen["missing"] == 30102  # INPUT_DOES_NOT_EXIST
    endpoints = ["/clarifai.api.V2/MyScopes", "/clarifai.api.V2/PostInputs"]
    assert seen["scopes"] == [[10000, ["PostInputs"], "alice", "photos", endpoints]] * 2
    assert seen["keyed"] == [10000, [f"{prefix}-image", f"{prefix}-text", f"{prefix}-keyed"], [10000, "a cat"]]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_the_pinned_client(destination: Service, keys: Keys, channel: str) -> None:
    seen = await asyncio.to_thread(exercise, arguments(destination, keys, channel, f"pinned-{channel}"))
    assert (seen["version"], seen["has_collector_calls"]) == ("12.2.11", True)
    check(seen, f"pinned-{channel}")


@pytest.mark.parametrize("channel", CHANNELS)
async def test_the_current_client(destination: Service, keys: Keys, channel: str, current_client: Path) -> None:
    prefix = f"current-{channel}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        json.dumps(arguments(destination, keys, channel, prefix)),
        env={**os.environ, "PYTHONPATH": str(current_client)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    seen = json.loads(out)
    assert (seen["version"], seen["has_collector_calls"]) == (CURRENT_CLARIFAI_GRPC, False)
    check(seen, prefix)


def test_destination_serve_grpc_port(tmp_path: Path) -> None:
    """``collectors destination serve --grpc-port``: MyScopes answers over the official gRPC channel."""
    db = tmp_path / "destination.db"
    with Store(db) as store:
        store.bootstrap("alice", "photos", "alice-photos-post-key-0001", ["PostInputs"])
    grpc_port = free_port()
    service = start_destination(db, grpc_port=grpc_port)
    try:
        channel = ClarifaiChannel.get_insecure_grpc_channel(base="127.0.0.1", port=grpc_port)
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = service_pb2_grpc.V2Stub(channel)
        reply = stub.MyScopes(
            service_pb2.MyScopesRequest(), metadata=(("authorization", "Key alice-photos-post-key-0001"),)
        )
        channel.close()
    finally:
        service.stop()
    assert (reply.status.code, list(reply.scopes), reply.app.id) == (10000, ["PostInputs"], "photos")
    assert "gRPC on port" in service.log.read_text()
