"""Fixtures: the reference model and the reference destination (for MyScopes) served in-process over real
HTTP, and the official client's stubs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from streams.services.destination.backends import open_store
from streams.services.destination.server import running as destination_running
from streams.services.model.outputs import ModelService
from streams.services.model.service import RunningModel
from streams.services.model.service import running as model_running


@dataclass(frozen=True)
class Scopes:
    """A reference destination answering MyScopes, and a key of each kind."""

    url: str
    alice_key: str  # alice/photos
    bob_key: str  # bob/other


@pytest.fixture
async def model() -> AsyncIterator[RunningModel]:
    async with model_running(ModelService(), grpc_port=0) as running:
        yield running


@pytest.fixture
async def scopes() -> AsyncIterator[Scopes]:
    with open_store(":memory:") as store:
        store.bootstrap("alice", "photos", "alice-key-0123456789", ["PostInputs"])
        store.bootstrap("bob", "other", "bob-key-0123456789", ["PostInputs"])
        async with destination_running(store) as url:
            yield Scopes(url, "alice-key-0123456789", "bob-key-0123456789")
