"""The five Collector calls with Clarifai's official client (clarifai-grpc, the release with the Collector
calls), over its JSON channel (REST) and its gRPC channel, with and without the app in the request."""

from __future__ import annotations

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2, status_pb2

from streams.kafka.control_topic import ControlWriter
from streams.services.clarifai_grpc import bridged
from streams.services.management.api import COLLECTOR_CALLS
from streams.services.management.api import running as control_running
from streams.tools.localkafka.broker import LocalKafka

from .conftest import CHANNELS, Keys, Service, call

pytestmark = [pytest.mark.kafka, pytest.mark.parametrize("channel", CHANNELS)]

SUCCESS = status_code_pb2.SUCCESS
PHOTOS = resources_pb2.UserAppIDSet(user_id="alice", app_id="photos")


def collector(collector_id: str, key: str, **fields: object) -> resources_pb2.Collector:
    """A collector as Clarifai's client builds it: the model watched and the PostInputs key in its source."""
    fields = {"description": "uncertain dogs", "pre_queue_random_sample": 0.5, **fields}
    return resources_pb2.Collector(
        id=collector_id,
        collector_source=resources_pb2.CollectorSource(
            api_post_model_outputs_collector_source=resources_pb2.APIPostModelOutputsCollectorSource(
                model_user_id="clarifai",
                model_app_id="main",
                model_id="general-image-recognition",
                model_version_id="aa7f35c01e0642fda5cf400f543e7c40",
                post_inputs_key_id=key,
            )
        ),
        **fields,
    )


def source(item: resources_pb2.Collector) -> resources_pb2.APIPostModelOutputsCollectorSource:
    return item.collector_source.api_post_model_outputs_collector_source


async def test_post_get_list_patch_delete(control: Service, keys: Keys, channel: str) -> None:
    stub = control.stub(channel)
    posted = await call(
        stub.PostCollectors,
        service_pb2.PostCollectorsRequest(user_app_id=PHOTOS, collectors=[collector("dogs", keys.post)]),
        keys.owner,
    )
    assert posted.status.code == SUCCESS, posted.status
    [created] = posted.collectors
    assert (created.id, created.description, created.pre_queue_random_sample) == ("dogs", "uncertain dogs", 0.5)
    assert source(created).model_id == "general-image-recognition"
    assert source(created).model_version_id == "aa7f35c01e0642fda5cf400f543e7c40"
    assert source(created).post_inputs_key_id == keys.post[:4] + "…", "the key is never shown back"
    assert created.status.code == status_code_pb2.COLLECTOR_ACTIVE
    assert created.created_at.seconds > 0

    got = await call(
        stub.GetCollector, service_pb2.GetCollectorRequest(user_app_id=PHOTOS, collector_id="dogs"), keys.owner
    )
    assert (got.status.code, got.collector) == (SUCCESS, created)

    more = [collector(f"c{i}", keys.post) for i in range(3)]
    await call(stub.PostCollectors, service_pb2.PostCollectorsRequest(user_app_id=PHOTOS, collectors=more), keys.owner)
    pages = []
    for page in (1, 2, 3):
        listed = await call(
            stub.ListCollectors,
            service_pb2.ListCollectorsRequest(user_app_id=PHOTOS, page=page, per_page=2),
            keys.owner,
        )
        assert listed.status.code == SUCCESS
        pages.append([item.id for item in listed.collectors])
    assert pages == [["c0", "c1"], ["c2", "dogs"], []]

    # Read, change, write back: the redacted key keeps the stored one; INACTIVE pauses.
    changed = resources_pb2.Collector()
    changed.CopyFrom(got.collector)
    changed.status.code = status_code_pb2.COLLECTOR_INACTIVE
    changed.pre_queue_random_sample = 0.25
    patched = await call(
        stub.PatchCollectors,
        service_pb2.PatchCollectorsRequest(user_app_id=PHOTOS, action="overwrite", collectors=[changed]),
        keys.owner,
    )
    assert patched.status.code == SUCCESS, patched.status
    [after] = patched.collectors
    assert (after.status.code, after.pre_queue_random_sample) == (status_code_pb2.COLLECTOR_INACTIVE, 0.25)
    assert after.created_at == created.created_at
    assert source(after).post_inputs_key_id == keys.post[:4] + "…"

    deleted = await call(
        stub.DeleteCollectors, service_pb2.DeleteCollectorsRequest(user_app_id=PHOTOS, ids=["dogs"]), keys.owner
    )
    assert deleted.status.code == SUCCESS
    gone = await call(
        stub.GetCollector, service_pb2.GetCollectorRequest(user_app_id=PHOTOS, collector_id="dogs"), keys.owner
    )
    assert gone.status.code == status_code_pb2.COLLECTOR_MISSING
    everything = await call(
        stub.DeleteCollectors, service_pb2.DeleteCollectorsRequest(user_app_id=PHOTOS, delete_all=True), keys.owner
    )
    assert everything.status.code == SUCCESS
    listed = await call(stub.ListCollectors, service_pb2.ListCollectorsRequest(user_app_id=PHOTOS), keys.owner)
    assert (listed.status.code, list(listed.collectors)) == (SUCCESS, [])


async def test_without_the_app_the_key_names_it(control: Service, keys: Keys, channel: str) -> None:
    """No user_app_id: Clarifai's bindings without the app (/v2/collectors), the app being the key's."""
    stub = control.stub(channel)
    posted = await call(
        stub.PostCollectors,
        service_pb2.PostCollectorsRequest(collectors=[collector("cats", keys.post)]),
        keys.photos_owner,
    )
    assert posted.status.code == SUCCESS, posted.status
    got = await call(stub.GetCollector, service_pb2.GetCollectorRequest(collector_id="cats"), keys.photos_owner)
    assert (got.status.code, got.collector.id) == (SUCCESS, "cats")
    listed = await call(stub.ListCollectors, service_pb2.ListCollectorsRequest(), keys.photos_owner)
    assert [item.id for item in listed.collectors] == ["cats"]
    paused = collector("cats", keys.post, status=status_pb2.Status(code=status_code_pb2.COLLECTOR_INACTIVE))
    patched = await call(
        stub.PatchCollectors,
        service_pb2.PatchCollectorsRequest(action="overwrite", collectors=[paused]),
        keys.photos_owner,
    )
    assert patched.collectors[0].status.code == status_code_pb2.COLLECTOR_INACTIVE
    # the same collector, seen through its app's path
    seen = await call(
        stub.GetCollector, service_pb2.GetCollectorRequest(user_app_id=PHOTOS, collector_id="cats"), keys.owner
    )
    assert seen.collector.status.code == status_code_pb2.COLLECTOR_INACTIVE
    deleted = await call(stub.DeleteCollectors, service_pb2.DeleteCollectorsRequest(ids=["cats"]), keys.photos_owner)
    assert deleted.status.code == SUCCESS
    # a user-wide key has no app of its own: the request must name one
    refused = await call(stub.ListCollectors, service_pb2.ListCollectorsRequest(), keys.owner)
    assert refused.status.code == status_code_pb2.CONN_INVALID_REQUEST
    assert "user_app_id" in refused.status.details


async def test_refusals(control: Service, keys: Keys, channel: str) -> None:
    stub = control.stub(channel)
    post = service_pb2.PostCollectorsRequest(user_app_id=PHOTOS, collectors=[collector("dogs", keys.post)])

    unknown = await call(stub.PostCollectors, post, "never-issued-key-0001")
    assert unknown.status.code == status_code_pb2.CONN_KEY_NOT_FOUND
    assert "never-issued-key-0001" not in str(unknown)
    if channel == "grpc":  # the JSON channel itself refuses to send a call without a key
        no_key = await call(stub.ListCollectors, service_pb2.ListCollectorsRequest(user_app_id=PHOTOS), None)
        assert no_key.status.code == status_code_pb2.CONN_KEY_INVALID

    others = await call(stub.PostCollectors, post, keys.bob)
    assert others.status.code == status_code_pb2.CONN_INSUFFICIENT_SCOPES
    assert "alice/photos" in others.status.details

    cannot_post = service_pb2.PostCollectorsRequest(user_app_id=PHOTOS, collectors=[collector("x", keys.list_only)])
    scopes = await call(stub.PostCollectors, cannot_post, keys.owner)
    assert scopes.status.code == status_code_pb2.CONN_INSUFFICIENT_SCOPES
    assert "PostInputs" in scopes.status.details

    missing = await call(
        stub.GetCollector, service_pb2.GetCollectorRequest(user_app_id=PHOTOS, collector_id="nope"), keys.owner
    )
    assert missing.status.code == status_code_pb2.COLLECTOR_MISSING
    overwrite_missing = await call(
        stub.PatchCollectors,
        service_pb2.PatchCollectorsRequest(user_app_id=PHOTOS, action="overwrite", collectors=[collector("nope", "")]),
        keys.owner,
    )
    assert overwrite_missing.status.code == status_code_pb2.COLLECTOR_MISSING
    delete_missing = await call(
        stub.DeleteCollectors, service_pb2.DeleteCollectorsRequest(user_app_id=PHOTOS, ids=["nope"]), keys.owner
    )
    assert delete_missing.status.code == status_code_pb2.COLLECTOR_MISSING

    bad_sample = collector("dogs", keys.post, pre_queue_random_sample=2.0)
    bad = await call(
        stub.PostCollectors, service_pb2.PostCollectorsRequest(user_app_id=PHOTOS, collectors=[bad_sample]), keys.owner
    )
    assert bad.status.code == status_code_pb2.CONN_INVALID_REQUEST
    assert "collectors[0].pre_queue_random_sample" in bad.status.details
    no_model = collector("dogs", keys.post)
    source(no_model).ClearField("model_id")
    bad = await call(
        stub.PostCollectors, service_pb2.PostCollectorsRequest(user_app_id=PHOTOS, collectors=[no_model]), keys.owner
    )
    assert bad.status.code == status_code_pb2.CONN_INVALID_REQUEST
    assert "collectors[0].source.model_id" in bad.status.details
    missing_status = collector("dogs", keys.post, status=status_pb2.Status(code=status_code_pb2.COLLECTOR_MISSING))
    bad = await call(
        stub.PostCollectors,
        service_pb2.PostCollectorsRequest(user_app_id=PHOTOS, collectors=[missing_status]),
        keys.owner,
    )
    assert bad.status.code == status_code_pb2.CONN_INVALID_REQUEST
    assert "collectors[0].status.code" in bad.status.details
    merge = await call(
        stub.PatchCollectors,
        service_pb2.PatchCollectorsRequest(user_app_id=PHOTOS, action="merge", collectors=[collector("dogs", "")]),
        keys.owner,
    )
    assert merge.status.code == status_code_pb2.CONN_INVALID_REQUEST
    assert "overwrite" in merge.status.details

    listed = await call(stub.ListCollectors, service_pb2.ListCollectorsRequest(user_app_id=PHOTOS), keys.owner)
    assert (listed.status.code, list(listed.collectors)) == (SUCCESS, []), "no refused call stored anything"


async def test_any_other_call_answers_a_status(control: Service, keys: Keys, channel: str) -> None:
    stub = control.stub(channel)
    reply = await call(stub.ListApps, service_pb2.ListAppsRequest(), keys.owner)
    if channel == "grpc":
        assert reply.status.code == status_code_pb2.NOT_IMPLEMENTED
    else:  # the REST API has no such route: Clarifai's FAILURE, in JSON
        assert reply.status.code == status_code_pb2.FAILURE


async def test_a_collector_stored_in_the_projects_spelling_reads_in_clarifais(
    kafka: LocalKafka, control_topic: str, destination: Service, keys: Keys, channel: str
) -> None:
    """A control record as the API has always written it (source, destination, status "paused") is served in
    Clarifai's fields; the record itself is what workers read, unchanged."""
    record = {
        "kind": "collector",
        "user_id": "alice",
        "app_id": "photos",
        "collector": {
            "id": "old",
            "description": "",
            "source": {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "m", "caller_user_id": "bob"},
            "destination": {"base_url": destination.url, "user_id": "alice", "app_id": "photos", "key": keys.post},
            "pre_queue_random_sample": 0.5,
            "status": "paused",
        },
        "created_at": "2026-11-27T10:00:00.000Z",
        "modified_at": "2026-11-27T10:00:00.000Z",
        "last_error": None,
    }
    writer = ControlWriter(kafka.bootstrap_servers, control_topic)
    await writer.start()
    try:
        await writer.put("collector/alice/photos/old", record)
    finally:
        await writer.stop()
    async with (
        control_running(kafka.bootstrap_servers, control_topic, destination.url) as url,
        bridged(url, COLLECTOR_CALLS) as port,
    ):
        request = service_pb2.GetCollectorRequest(user_app_id=PHOTOS, collector_id="old")
        got = await call(Service(url, port).stub(channel).GetCollector, request, keys.owner)
    assert got.status.code == SUCCESS, got.status
    assert (source(got.collector).model_id, source(got.collector).caller_user_id) == ("m", "bob")
    assert source(got.collector).post_inputs_key_id == keys.post[:4] + "…"
    assert got.collector.status.code == status_code_pb2.COLLECTOR_INACTIVE
    assert got.collector.created_at.ToJsonString() == "2026-11-27T10:00:00Z"
