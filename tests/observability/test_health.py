"""``/healthz`` and ``/readyz`` of the worker, the management API and the reference destination: not ready,
then ready, through a start; ready, not ready, ready again through a stop and a start of Kafka (a broker of
the test's own, restarted on the same port)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streams.kafka.producing import publish_lines
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import get_json, start_worker, wait_settled
from streams.tools.samples.generate import events
from tests.conftest import TEST_KAFKA_PORT, topic_env
from tests.operations.support import config

from .support import start_control_api, status_of, statuses_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RESTARTED_PORT = TEST_KAFKA_PORT + 2
"""The broker this test stops and starts (and its controller, + 1): fixed, so it comes back where the clients
look for it, and below the ephemeral range so nothing else takes it meanwhile."""


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[LocalKafka]:
    broker = LocalKafka(port=RESTARTED_PORT, home=tmp_path / "kafka", dist=LocalKafka().dist)
    yield broker
    broker.down()


async def test_probes_through_a_start_and_a_kafka_restart(
    tmp_path, own_kafka: LocalKafka, destination_factory, unique
) -> None:
    broker = f"kafka://{own_kafka.bootstrap_servers}"
    destination = destination_factory()
    assert status_of(f"{destination.url}/healthz") == 200
    assert get_json(f"{destination.url}/readyz") == {"ready": True, "checks": {"database": True}}

    # The management API started before Kafka: alive, not ready, until Kafka answers and it read its topic.
    api = start_control_api(broker, unique, destination.url, tmp_path / "api.log", wait="/healthz")
    try:
        assert status_of(f"{api.url}/readyz") == 503
        own_kafka.up(wait_s=120)
        seen = statuses_until(f"{api.url}/readyz", lambda s: s[-1] == 200, timeout_s=60)
        assert seen[0] == 503, seen

        key = destination.add_app("ann", "pets")
        worker = start_worker(
            config(tmp_path / "collectors.yaml", destination.url),
            broker=broker,
            app_id=unique,
            data_dir=tmp_path / "worker",
            env={**topic_env(unique), "TEST_PETS_KEY": key},
        )
        try:
            assert status_of(f"{worker.url}/healthz") == 200
            seen = statuses_until(f"{worker.url}/readyz", lambda s: s[-1] == 200, timeout_s=90)
            assert seen == [503, 200], seen  # serving before its partitions and the control topic are in

            own_kafka.down()
            for url in (worker.url, api.url):
                statuses_until(f"{url}/readyz", lambda s: s[-1] == 503, timeout_s=30)
                assert status_of(f"{url}/healthz") == 200  # alive all along
            not_ready = get_json_status(f"{worker.url}/readyz")
            assert not_ready["checks"]["kafka"] is False, not_ready
            assert status_of(f"{destination.url}/readyz") == 200  # the destination does not need Kafka

            own_kafka.up(wait_s=120)
            for url in (worker.url, api.url):
                statuses_until(f"{url}/readyz", lambda s: s[-1] == 200, timeout_s=120)
            # Ready means working: events published now are selected and posted.
            lines = [orjson.dumps(e) for e in events(40, seed=11)]
            topic = topic_env(unique)["COLLECTORS_PREDICTIONS_TOPIC"]
            await publish_lines(lines, bootstrap=own_kafka.bootstrap_servers, topic=topic)
            settled = wait_settled([worker], events=len(lines), timeout_s=120)
            assert settled["events"]["events"] == len(lines)
        finally:
            worker.stop()
            print(f"--- {worker.log} ---\n{worker.log_tail(30)}")
    finally:
        api.stop()
        print(f"--- {api.log} ---\n{api.log_tail(30)}")


def get_json_status(url: str) -> dict[str, object]:
    """The JSON body of an answer, whatever its status (a 503 of ``/readyz`` names the failing checks)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            document: dict[str, object] = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        document = orjson.loads(exc.read())
    return document
