"""Fixtures: the reference destination and the management API in-process, each over REST and gRPC, called
with Clarifai's official client (``clarifai-grpc``) over its JSON channel and its gRPC channel."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import service_pb2_grpc

from streams.services.clarifai_grpc import bridged
from streams.services.destination.server import GRPC_CALLS
from streams.services.destination.server import running as destination_running
from streams.services.destination.store import Store
from streams.services.management.api import COLLECTOR_CALLS
from streams.services.management.api import running as control_running
from streams.tools.localkafka.broker import LocalKafka

CHANNELS = ("json", "grpc")


@dataclass(frozen=True)
class Keys:
    """Clear keys seeded into the destination, by purpose."""

    owner: str  # alice, every app: All
    photos_owner: str  # alice/photos only: All
    post: str  # alice/photos: PostInputs
    list_only: str  # alice/photos: ListInputs
    bob: str  # bob/other: All


@dataclass(frozen=True)
class Service:
    """A service served over REST (``url``) and gRPC (``grpc_port``)."""

    url: str
    grpc_port: int

    def stub(self, channel: str) -> service_pb2_grpc.V2Stub:
        """A V2 stub of the official client over its JSON channel or its gRPC channel (no TLS)."""
        if channel == "json":
            return service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=self.url))
        host = urlsplit(self.url).hostname
        return service_pb2_grpc.V2Stub(ClarifaiChannel.get_insecure_grpc_channel(base=host, port=self.grpc_port))


def metadata(key: str) -> tuple[tuple[str, str]]:
    """The call metadata the official client documents."""
    return (("authorization", f"Key {key}"),)


async def call(method: Callable[..., Any], request: Any, key: str | None) -> Any:
    """One call of the (blocking) official client, off the event loop that runs the services."""
    return await asyncio.to_thread(method, request, metadata=None if key is None else metadata(key))


@pytest.fixture
def store() -> Iterator[Store]:
    with Store(":memory:") as db:
        db.bootstrap("alice", "photos", "alice-photos-post-key-0001", ["PostInputs"])
        db.bootstrap("bob", "other", "bob-other-all-key-00000001", ["All"])
        yield db


@pytest.fixture
def keys(store: Store) -> Keys:
    return Keys(
        owner=store.create_key("alice", None, ["All"])[1],
        photos_owner=store.create_key("alice", "photos", ["All"])[1],
        post="alice-photos-post-key-0001",
        list_only=store.create_key("alice", "photos", ["ListInputs"])[1],
        bob="bob-other-all-key-00000001",
    )


@pytest.fixture
async def destination(store: Store) -> AsyncIterator[Service]:
    async with destination_running(store) as url, bridged(url, GRPC_CALLS) as port:
        yield Service(url, port)


@pytest.fixture
def control_topic(unique: str) -> str:
    """A control topic of this test's own (Kafka topic names take letters, digits, '.', '_' and '-')."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{unique}-control")


@pytest.fixture
async def control(kafka: LocalKafka, control_topic: str, destination: Service) -> AsyncIterator[Service]:
    async with (
        control_running(kafka.bootstrap_servers, control_topic, destination.url) as url,
        bridged(url, COLLECTOR_CALLS) as port,
    ):
        yield Service(url, port)


# The newest clarifai-grpc release when these tests were written; it no longer has the Collector calls, so the
# services run on the pinned 12.2.11 and user code on this one is tested in a process of its own.
CURRENT_CLARIFAI_GRPC = "12.6.0"


@pytest.fixture(scope="session")
def current_client() -> Path:
    """A directory holding the current clarifai-grpc (with protobuf < 7 and requests), installed once."""
    target = Path.home() / ".cache" / "collectors" / f"clarifai-grpc-{CURRENT_CLARIFAI_GRPC}"
    if not (target / "clarifai_grpc").is_dir():
        staging = target.with_name(f"{target.name}.{os.getpid()}")
        subprocess.run(
            [
                sys.executable,
                *("-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(staging)),
                *(f"clarifai-grpc=={CURRENT_CLARIFAI_GRPC}", "protobuf<7", "requests"),
            ],
            check=True,
        )
        staging.rename(target)
    return target
