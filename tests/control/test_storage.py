"""What the management API writes to the control topic, and that it serves what the topic holds."""

from __future__ import annotations

import orjson
import pytest

from schemas.management import StoredCollector, StoredWorkflow
from streams.core.secrets import load_box, open_document
from streams.kafka.control_topic import ControlReader, ControlWriter
from streams.services.management.api import running
from streams.tools.localkafka.broker import LocalKafka

from .conftest import collector
from .support import Api, Keys

pytestmark = pytest.mark.kafka


async def read_state(kafka: LocalKafka, topic: str) -> dict[str, dict[str, object]]:
    reader = ControlReader(kafka.bootstrap_servers, topic)
    await reader.start()
    try:
        await reader.ready.wait()
        return dict(reader.state)
    finally:
        await reader.stop()


async def test_records_hold_the_key_sealed_for_the_workers(
    api: Api, keys: Keys, kafka: LocalKafka, control_topic: str
) -> None:
    await api.call(
        "POST", "workflows", {"workflows": [{"id": "w", "nodes": [{"operator": "random_sample", "keep_fraction": 1}]}]}
    )
    await api.call(
        "POST", "collectors", {"collectors": [collector("dogs", api.destination, keys.post, pre_queue_workflow_id="w")]}
    )
    state = await read_state(kafka, control_topic)
    assert sorted(state) == ["collector/alice/photos/dogs", "workflow/alice/photos/w"]
    record = state["collector/alice/photos/dogs"]
    assert keys.post not in orjson.dumps(record).decode()
    assert "key" not in record["collector"]["destination"]  # type: ignore[index]
    stored = StoredCollector.model_validate(open_document(record, load_box()))
    assert stored.collector.destination.key is not None
    assert stored.collector.destination.key.get_secret_value() == keys.post
    assert (stored.user_id, stored.app_id, stored.collector.pre_queue_workflow_id) == ("alice", "photos", "w")
    StoredWorkflow.model_validate(state["workflow/alice/photos/w"])

    await api.call("DELETE", "collectors", {"delete_all": True})
    assert sorted(await read_state(kafka, control_topic)) == ["workflow/alice/photos/w"]


async def test_a_new_api_instance_serves_what_the_topic_holds(
    api: Api, keys: Keys, kafka: LocalKafka, control_topic: str
) -> None:
    _, body = await api.call("POST", "collectors", {"collectors": [collector("dogs", api.destination, keys.post)]})
    async with running(kafka.bootstrap_servers, control_topic, api.destination) as other_url:
        status, reply = await Api(api.http, other_url, api.destination, keys.owner).call("GET", "collectors/dogs")
    assert (status, reply["collector"]) == (200, body["collectors"][0])


async def test_auth_service_unreachable_is_502(kafka: LocalKafka, control_topic: str, api: Api, keys: Keys) -> None:
    from streams.tools.localstack import free_port

    async with running(kafka.bootstrap_servers, control_topic, f"http://127.0.0.1:{free_port()}") as url:
        status, body = await Api(api.http, url, api.destination, keys.owner).call("GET", "collectors")
    assert status == 502
    assert body["status"]["code"] == 40034
    assert "/myscopes" in body["status"]["details"]


async def test_an_invalid_record_is_skipped_and_logged_without_its_values(
    kafka: LocalKafka, control_topic: str, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    writer = ControlWriter(kafka.bootstrap_servers, control_topic)
    await writer.start()
    bogus = {"kind": "collector", "user_id": "alice", "app_id": "photos", "collector": {"destination": {"key": SECRET}}}
    await writer.put("collector/alice/photos/bogus", bogus)
    await writer.stop()
    async with running(kafka.bootstrap_servers, control_topic, api.destination) as other_url:
        status, body = await Api(api.http, other_url, api.destination, api.key).call("GET", "collectors")
    assert (status, body["collectors"]) == (200, [])
    assert "collector/alice/photos/bogus" in caplog.text
    assert SECRET not in caplog.text


SECRET = "a-secret-key-never-logged-0001"
