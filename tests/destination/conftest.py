"""Fixtures: a seeded store, on SQLite and on a real PostgreSQL, served over real HTTP on an ephemeral port."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from streams.services.destination.backends import open_store
from streams.services.destination.server import running
from streams.services.destination.store import BaseStore

from .localpg import INSTALL_HINT, LocalPostgres, find_bindir, running_in_ci
from .support import BACKENDS, Keys


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A throwaway PostgreSQL cluster for the session; where PostgreSQL is not installed, its tests are skipped
    (failed when $CI is set, so CI cannot skip them silently)."""
    bindir = find_bindir()
    if bindir is None:
        reason = (
            f"PostgreSQL not found (no initdb from pg_config, on PATH or in /usr/lib/postgresql/*/bin): {INSTALL_HINT}"
        )
        if running_in_ci():
            pytest.fail(f"{reason}; $CI is set, so the PostgreSQL tests may not be skipped")
        pytest.skip(reason)
    cluster = LocalPostgres(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres: LocalPostgres) -> str:
    """The URL of a new, empty database of the session's cluster: this test's alone."""
    return postgres.create_database(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest) -> str:
    """Where the test's store lives: ":memory:" SQLite, then a fresh PostgreSQL database (the test runs on both)."""
    return ":memory:" if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database: str) -> Iterator[BaseStore]:
    with open_store(database) as db:
        db.create_user("alice")
        db.create_app("alice", "photos")
        db.create_user("bob")
        db.create_app("bob", "other")
        yield db


@pytest.fixture
def keys(store: BaseStore) -> Keys:
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
async def url(store: BaseStore) -> AsyncIterator[str]:
    async with running(store, faults=True) as base_url:
        yield base_url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
