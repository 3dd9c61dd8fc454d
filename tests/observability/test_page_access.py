"""Who sees the funnel page's data: anyone on the loopback interface; from elsewhere only with an owner's key,
and then only the collectors of the apps that key covers."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import aiohttp
import pytest

from streams.services.management.api import running
from streams.services.management.funnel import Watched
from streams.services.management.observe import is_loopback
from streams.tools.localkafka.broker import LocalKafka
from tests.conftest import topic_env
from tests.e2e.management_support import collector_body, new_key

pytestmark = pytest.mark.kafka


def outward_address() -> str | None:
    """This host's address on its outward interface (no packet is sent), None when it has only loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.1") and is_loopback("::1")
    assert not is_loopback("192.0.2.7") and not is_loopback("fd00::2") and not is_loopback(None)
    assert not is_loopback("not an address")


async def test_from_elsewhere_the_page_needs_an_owners_key(kafka: LocalKafka, destination_factory, unique) -> None:
    outward = outward_address()
    if outward is None:
        pytest.skip("this host has no interface besides loopback")
    destination = destination_factory()
    ann = new_key(destination, "anno", app_id=None)  # user ann, every app of hers (ann/pets)
    pets_key = new_key(destination, "post")
    env = topic_env(unique)
    watched = Watched(
        f"kafka://{kafka.bootstrap_servers}",
        app_id=unique,
        predictions_topic=env["COLLECTORS_PREDICTIONS_TOPIC"],
        queue_topic=env["COLLECTORS_QUEUE_TOPIC"],
        dead_letter_topic=env["COLLECTORS_DEAD_LETTER_TOPIC"],
    )
    control = env["COLLECTORS_CONTROL_TOPIC"]
    async with (
        running(watched.broker, control, destination.url, host="0.0.0.0", watched=watched) as local_url,
        aiohttp.ClientSession() as http,
    ):
        port = local_url.rsplit(":", 1)[1]
        remote_url = f"http://{outward}:{port}"
        # Collectors of two users, each created with a key of its own.
        body = collector_body("dogs", destination.url, pets_key, pre_queue_random_sample=0.5)
        async with http.post(
            f"{local_url}/v2/users/ann/apps/pets/collectors",
            json={"collectors": [body]},
            headers={"Authorization": f"Key {ann}"},
        ) as created:
            assert created.status == 200, await created.text()
        bob_key = destination.add_app("bob", "birds")
        bob_post = collector_body("crows", destination.url, bob_key, pre_queue_random_sample=0.5)
        async with http.post(
            f"{local_url}/v2/users/bob/apps/birds/collectors",
            json={"collectors": [bob_post]},
            headers={"Authorization": f"Key {bob_key}"},
        ) as created:
            assert created.status == 200, await created.text()

        async def funnel(url: str, key: str | None = None) -> tuple[int, Any]:
            headers = {"Authorization": f"Key {key}"} if key else {}
            async with http.get(f"{url}/funnel", headers=headers) as answer:
                return answer.status, await answer.json()

        status, everything = await funnel(local_url)
        assert status == 200
        shown = {c["id"] for c in everything["collectors"]}
        assert shown == {"ann/pets/dogs", "bob/birds/crows"}

        status, refused = await funnel(remote_url)
        assert (status, refused["status"]["code"]) == (401, 11008)
        status, refused = await funnel(remote_url, "nobody-has-this-key")
        assert (status, refused["status"]["code"]) == (401, 11009)
        status, hers = await funnel(remote_url, ann)
        assert status == 200
        assert [c["id"] for c in hers["collectors"]] == ["ann/pets/dogs"]
        assert all(d["collector"].startswith("ann/pets/") for d in hers["dead_letters"])

        async with http.get(f"{remote_url}/") as page:  # the page itself holds no data: it asks for the key
            assert page.status == 200 and "key-form" in await page.text()
