"""Fixtures: a seeded in-memory store served over real HTTP on an ephemeral port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from streams.destination.server import running
from streams.destination.store import Store

from .support import Keys


@pytest.fixture
def store() -> Iterator[Store]:
    with Store(":memory:") as db:
        db.create_user("alice")
        db.create_app("alice", "photos")
        db.create_user("bob")
        db.create_app("bob", "other")
        yield db


@pytest.fixture
def keys(store: Store) -> Keys:
    revoked_id, revoked = store.create_key("alice", "photos", ["All"])
    store.revoke_key(revoked_id)
    return Keys(
        post=store.create_key("alice", "photos", ["PostInputs", "ListInputs"])[1],
        post_only=store.create_key("alice", "photos", ["PostInputs"])[1],
        list_only=store.create_key("alice", "photos", ["ListInputs"])[1],
        user_wide=store.create_key("alice", None, ["All"])[1],
        bob=store.create_key("bob", "other", ["All"])[1],
        revoked=revoked,
    )


@pytest.fixture
async def url(store: Store) -> AsyncIterator[str]:
    async with running(store, faults=True) as base_url:
        yield base_url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
