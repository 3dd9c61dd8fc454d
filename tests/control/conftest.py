"""Fixtures: the real reference destination (auth and inputs) and the management API in-process, on the
session's real Kafka broker with a control topic unique to each test."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from streams.services.destination.server import running as destination_running
from streams.services.destination.store import Store
from streams.services.management.api import running as control_running
from streams.tools.localkafka.broker import LocalKafka

from .support import Api, Keys


@pytest.fixture
def store() -> Iterator[Store]:
    with Store(":memory:") as db:
        db.bootstrap("alice", "photos", "alice-photos-post-key-0001", ["PostInputs"])
        db.ensure_app("alice", "videos")
        db.bootstrap("bob", "other", "bob-other-all-key-00000001", ["All"])
        yield db


@pytest.fixture
def keys(store: Store) -> Keys:
    revoked_id, revoked = store.create_key("alice", None, ["All"])
    store.revoke_key(revoked_id)
    return Keys(
        owner=store.create_key("alice", None, ["All"])[1],
        photos_owner=store.create_key("alice", "photos", ["ListInputs"])[1],
        post="alice-photos-post-key-0001",
        list_only=store.create_key("alice", "photos", ["ListInputs"])[1],
        videos_post=store.create_key("alice", "videos", ["PostInputs"])[1],
        bob="bob-other-all-key-00000001",
        revoked=revoked,
    )


@pytest.fixture
async def destination(store: Store) -> AsyncIterator[str]:
    async with destination_running(store) as url:
        yield url


@pytest.fixture
def control_topic(unique: str) -> str:
    """A control topic of this test's own (Kafka topic names take letters, digits, '.', '_' and '-')."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{unique}-control")


@pytest.fixture
async def api_url(kafka: LocalKafka, control_topic: str, destination: str) -> AsyncIterator[str]:
    async with control_running(kafka.bootstrap_servers, control_topic, destination) as url:
        yield url


@pytest.fixture
async def api(api_url: str, destination: str, keys: Keys) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        yield Api(http, api_url, destination, keys.owner)


def collector(collector_id: str, destination: str, key: str, **fields: Any) -> dict[str, Any]:
    """A valid collector body for alice/photos (destination user and app left to the path)."""
    return {
        "id": collector_id,
        "source": {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "general-image-recognition"},
        "destination": {"base_url": destination, "key": key},
        "pre_queue_random_sample": 0.5,
        **fields,
    }
