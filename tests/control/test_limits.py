"""The management API's abuse limits and allow-list, against the real destination and broker: oversized bodies,
keys over their rate, and destinations outside the allow-list, each refused before anything is asked of
another service; and refusals logged without the key."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from streams.services.management.api import running
from streams.services.management.guard import Limits
from streams.tools.localkafka.broker import LocalKafka
from tests.security.support import recording_server

from .conftest import collector
from .support import Api, Keys

pytestmark = pytest.mark.kafka


async def test_a_body_over_the_limit_is_413(api: Api, keys: Keys) -> None:
    big = [collector(f"c{i}", api.destination, keys.post, description="x" * 10_000) for i in range(120)]
    status, body = await api.call("POST", "collectors", {"collectors": big})
    assert status == 413, body
    assert body["status"]["code"] == 40033 and "--max-body-bytes" in body["status"]["details"]
    status, body = await api.call("GET", "collectors")
    assert (status, body["collectors"]) == (200, [])


async def test_a_body_without_a_length_is_cut_at_the_limit(api: Api, keys: Keys) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 65_536

    url = f"{api.url}/v2/users/alice/apps/photos/collectors"
    async with api.http.post(url, data=chunks(), headers={"Authorization": f"Key {keys.owner}"}) as response:
        assert response.status == 413
        assert (await response.json())["status"]["code"] == 40033


async def test_a_key_over_its_rate_is_throttled_with_retry_after(
    kafka: LocalKafka, control_topic: str, destination: str, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    limits = Limits(requests_per_s=0.5, burst=3)
    async with (
        running(kafka.bootstrap_servers, control_topic, destination, limits=limits) as url,
        aiohttp.ClientSession() as http,
    ):
        api = Api(http, url, destination, keys.owner)
        with caplog.at_level(logging.INFO):
            answers = await asyncio.gather(*(api.call("GET", "collectors") for _ in range(5)))
            statuses = sorted(status for status, _ in answers)
            assert statuses == [200, 200, 200, 429, 429], answers
            throttled = next(body for status, body in answers if status == 429)
            assert throttled["status"]["code"] == 11005
            async with http.get(
                f"{url}/v2/users/alice/apps/photos/collectors", headers={"Authorization": f"Key {keys.owner}"}
            ) as response:
                assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
            other = await api.call("GET", "collectors", key=keys.photos_owner)
            assert other[0] == 200, "another key is not throttled"
    assert "throttled" in caplog.text and keys.owner not in caplog.text


async def test_a_destination_outside_the_allow_list_is_refused_before_any_request(api: Api, keys: Keys) -> None:
    async with recording_server() as elsewhere:
        status, body = await api.call("POST", "collectors", {"collectors": [collector("x", elsewhere.url, keys.post)]})
        assert status == 403, body
        assert body["status"]["code"] == 30103
        assert elsewhere.url in body["status"]["details"] and "--allowed-destination" in body["status"]["details"]
        for sneaky in (f"http://{api.destination.removeprefix('http://')}@127.0.0.1:1", "http://169.254.169.254"):
            status, body = await api.call("POST", "collectors", {"collectors": [collector("y", sneaky, keys.post)]})
            assert (status, body["status"]["code"]) == (403, 30103), body
        assert elsewhere.requests == []
