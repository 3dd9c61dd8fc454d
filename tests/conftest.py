"""Shared fixtures: one real Kafka broker per test session, and factories for topics, producers,
destinations and workers, each with names unique to the test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from streams.core.secrets import ENV_SECRET, generate_secret
from streams.kafka.producing import ensure_topic, publish_lines
from streams.services.destination.store import Store
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import Service, start_destination, start_worker

TEST_KAFKA_PORT = int(os.environ.get("COLLECTORS_TEST_BROKER_PORT", "29192"))

# The secret every worker, management API and command of the tests seals keys with (processes inherit it).
os.environ.setdefault(ENV_SECRET, generate_secret())


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A real single-node KRaft broker on loopback for the whole session."""
    broker = LocalKafka(port=TEST_KAFKA_PORT, home=tmp_path_factory.mktemp("kafka"), dist=LocalKafka().dist)
    broker.up(wait_s=90)
    yield broker
    broker.down()


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A name unique to this test: topics and consumer groups never collide between tests."""
    return f"{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def own_contexts(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Contexts (`collectors config`) of this test's own, never the user's: returns their folder."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    monkeypatch.delenv("COLLECTORS_CONTEXT", raising=False)
    return folder / "collectors"


@pytest.fixture
def topic_factory(kafka: LocalKafka, unique: str) -> Callable[..., Awaitable[str]]:
    """Create a topic named after the test: ``await topic_factory("predictions", partitions=4)``."""

    async def create(suffix: str, partitions: int = 4) -> str:
        name = f"{unique}-{suffix}"
        await ensure_topic(kafka.bootstrap_servers, name, partitions)
        return name

    return create


@pytest.fixture
def producer_factory(kafka: LocalKafka) -> Callable[[str, Sequence[bytes]], Awaitable[int]]:
    """Publish raw lines to a topic with aiokafka: ``await producer_factory(topic, lines)``."""

    async def produce(topic: str, lines: Sequence[bytes]) -> int:
        return await publish_lines(lines, bootstrap=kafka.bootstrap_servers, topic=topic)

    return produce


class Destination:
    """A reference destination running as its own process, with a user, apps and keys."""

    def __init__(self, service: Service, db: Path) -> None:
        self.service = service
        self.db = db
        self.url = service.url

    def add_app(self, user_id: str, app_id: str, scopes: Sequence[str] = ("PostInputs",)) -> str:
        key = f"test-{app_id}-{uuid.uuid4().hex}"
        with Store(self.db) as store:
            store.bootstrap(user_id, app_id, key, list(scopes))
        return key

    def input_ids(self, user_id: str, app_id: str) -> list[str]:
        with Store(self.db) as store:
            return [item.input_id for item in _all_inputs(store, user_id, app_id)]

    def inputs(self, user_id: str, app_id: str) -> list[Any]:
        with Store(self.db) as store:
            return _all_inputs(store, user_id, app_id)


def _all_inputs(store: Store, user_id: str, app_id: str) -> list[Any]:
    items: list[Any] = []
    page = 1
    while batch := store.list_inputs(user_id, app_id, page=page, per_page=1000):
        items.extend(batch)
        page += 1
    return items


@pytest.fixture
def destination_factory(tmp_path: Path) -> Iterator[Callable[..., Destination]]:
    started: list[Service] = []

    def start(*, faults: bool = False) -> Destination:
        db = tmp_path / f"destination-{len(started)}.db"
        Store(db).close()
        service = start_destination(db, faults=faults)
        started.append(service)
        return Destination(service, db)

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def worker_factory(kafka: LocalKafka, tmp_path: Path, unique: str) -> Iterator[Callable[..., Service]]:
    """Start ``collectors worker`` processes in the test's consumer group with the test's topics."""
    started: list[Service] = []

    def start(config: Path, *, env: Mapping[str, str] | None = None, app_id: str | None = None) -> Service:
        data_dir = tmp_path / f"worker-{len(started)}"
        service = start_worker(
            config,
            broker=f"kafka://{kafka.bootstrap_servers}",
            app_id=app_id or unique,
            data_dir=data_dir,
            env={**topic_env(unique), **(env or {})},
        )
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
        print(f"--- {service.log} ---\n{service.log_tail(15)}")


def topic_env(unique: str) -> dict[str, str]:
    """Worker settings that put a test's topics under its unique name."""
    return {
        "COLLECTORS_PREDICTIONS_TOPIC": f"{unique}-predictions",
        "COLLECTORS_QUEUE_TOPIC": f"{unique}-queue",
        "COLLECTORS_DEAD_LETTER_TOPIC": f"{unique}-dead-letters",
        "COLLECTORS_CONTROL_TOPIC": f"{unique}-control",
    }


def write_config(path: Path, document: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(document), sort_keys=False), encoding="utf-8")
    return path


async def read_topic(bootstrap: str, topic: str, *, expect: int, timeout_s: float = 30) -> list[dict[str, Any]]:
    """Read ``expect`` JSON records from the start of a topic (fails on timeout)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(records) < expect:
                batch = await consumer.getmany(timeout_ms=500)
                records.extend(orjson.loads(m.value) for msgs in batch.values() for m in msgs)
    finally:
        await consumer.stop()
    return records
