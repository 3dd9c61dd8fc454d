"""The poster against the real reference destination over HTTP: outcomes per input, retries, auth."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from streams.core.ids import input_id
from streams.delivery.poster import AuthFailure, Poster, RetryPolicy
from streams.services.destination.server import running
from streams.services.destination.store import Store


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Store, str]]:
    with Store(":memory:") as store:
        store.bootstrap("ann", "pets", "ann-pets-key-0001", ["PostInputs"])
        async with running(store, faults=True) as url:
            yield url, store, "ann-pets-key-0001"


def _inputs(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {"id": input_id("c", f"e{i}"), "data": {"image": {"url": f"https://x.example/{i}.jpg"}}}
        for i in range(start, start + n)
    ]


async def _faults(url: str, **config: object) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{url}/_faults", json=config) as response:
        assert response.status == 200


async def test_delivered_then_duplicate(served: tuple[str, Store, str]) -> None:
    url, store, key = served
    poster = Poster(retry=RetryPolicy(initial_s=0.01))
    try:
        first = await poster.post_inputs(url, "ann", "pets", key, _inputs(128))
        again = await poster.post_inputs(url, "ann", "pets", key, _inputs(10, start=120))
    finally:
        await poster.close()
    assert len(first.delivered) == 128 and not first.duplicates and not first.failed
    assert len(again.duplicates) == 8 and len(again.delivered) == 2
    assert store.count_inputs("ann", "pets") == 130


async def test_invalid_input_fails_alone(served: tuple[str, Store, str]) -> None:
    url, _store, key = served
    bad = {"id": "bad-one", "data": {"image": {"url": "ftp://nope"}}}
    poster = Poster()
    try:
        outcome = await poster.post_inputs(url, "ann", "pets", key, [*_inputs(3), bad])
    finally:
        await poster.close()
    assert len(outcome.delivered) == 3
    ((failed_id, code, _description),) = outcome.failed
    assert (failed_id, code) == ("bad-one", 30104)


async def test_more_than_128_is_refused_before_sending(served: tuple[str, Store, str]) -> None:
    url, _store, key = served
    poster = Poster()
    with pytest.raises(ValueError, match="at most 128"):
        await poster.post_inputs(url, "ann", "pets", key, _inputs(129))
    assert poster.requests == 0


@pytest.mark.parametrize("status", [500, 429])
async def test_transient_errors_are_retried_until_they_pass(served: tuple[str, Store, str], status: int) -> None:
    url, store, key = served
    await _faults(url, error_rate=1.0, error_status=status)
    poster = Poster(retry=RetryPolicy(initial_s=0.05, max_s=0.2))

    async def heal() -> None:
        await asyncio.sleep(0.6)
        await _faults(url)

    try:
        outcome, _ = await asyncio.gather(poster.post_inputs(url, "ann", "pets", key, _inputs(5)), heal())
    finally:
        await poster.close()
    assert len(outcome.delivered) == 5
    assert poster.retries >= 1
    assert store.count_inputs("ann", "pets") == 5


async def test_retry_after_is_honoured(served: tuple[str, Store, str]) -> None:
    url, _store, key = served
    await _faults(url, error_rate=1.0, error_status=429)
    poster = Poster(retry=RetryPolicy(initial_s=0.001, max_s=0.001, max_attempts=2))
    started = time.monotonic()
    with pytest.raises(Exception, match="429"):
        await poster.post_inputs(url, "ann", "pets", key, _inputs(1))
    await poster.close()
    assert time.monotonic() - started >= 0.9, "the destination's Retry-After: 1 sets the pause, not the tiny backoff"


async def test_down_destination_and_connection_refused_are_transient(served: tuple[str, Store, str]) -> None:
    url, _store, key = served
    await _faults(url, down=True)
    poster = Poster(retry=RetryPolicy(initial_s=0.01, max_s=0.01, max_attempts=3))
    with pytest.raises(Exception, match="503"):
        await poster.post_inputs(url, "ann", "pets", key, _inputs(1))
    with pytest.raises(Exception, match=r"ClientConnectorError|Connect"):
        await poster.post_inputs("http://127.0.0.1:9", "ann", "pets", key, _inputs(1))
    await poster.close()
    assert poster.retries == 4


@pytest.mark.parametrize(("key", "code"), [("not-a-known-key-123", 11008), (None, 11007)])
async def test_auth_failures_are_not_retried(served: tuple[str, Store, str], key: str | None, code: int) -> None:
    url, store, _ = served
    if key is None:
        _, key = store.create_key("ann", "pets", ["ListInputs"])
    poster = Poster()
    with pytest.raises(AuthFailure) as caught:
        await poster.post_inputs(url, "ann", "pets", key, _inputs(1))
    await poster.close()
    assert caught.value.code == code
    assert poster.requests == 1 and poster.retries == 0


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(initial_s=0.1, max_s=2.0)
    assert [policy.delay(n, None, rand=lambda: 1.0) for n in (1, 2, 3, 6, 10)] == [0.1, 0.2, 0.4, 2.0, 2.0]
    assert policy.delay(1, 5.0, rand=lambda: 0.5) == 5.0
