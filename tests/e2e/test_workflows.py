"""A collector combining several operators, on the real broker: the worker delivers exactly what
`simulate` predicts, quota included (its memory is a Faust table)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.core.ids import input_id
from streams.core.simulate import offline_index, simulate
from streams.tools.localstack import wait_settled
from streams.tools.samples.generate import events
from tests.conftest import write_config

pytestmark = pytest.mark.kafka

GENERAL = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "general-image-recognition"}
TEXT = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "sentiment-analysis"}


def _document(base_url: str) -> dict[str, object]:
    destination = {"base_url": base_url, "user_id": "ann", "app_id": "pets", "key_env": "TEST_PETS_KEY"}
    return {
        "collectors": [
            {
                "id": "uncertain-pets",
                "source": GENERAL,
                "destination": destination,
                "pre_queue_workflow_id": "uncertain-pets",
                "collect_outputs": True,
            },
            {
                "id": "fresh-reviews",
                "source": TEXT,
                "destination": destination,
                "pre_queue_random_sample": 0.9,
                "post_queue_workflow_id": "clean-text",
            },
        ],
        "workflows": [
            {
                "id": "uncertain-pets",
                "nodes": [
                    {"operator": "metadata_filter", "match": {"camera": {"in": ["north-gate", "lobby", "parking"]}}},
                    {"operator": "max_probability_below", "threshold": 0.8},
                    {
                        "operator": "concept_map",
                        "graph": [
                            {"subject": "dog", "predicate": "synonym", "object": "pet-dog"},
                            {"subject": "cat", "predicate": "synonym", "object": "pet-cat"},
                            {"subject": "horse", "predicate": "hyponym", "object": "pet-other"},
                        ],
                        "target_concepts": ["pet-dog", "pet-cat", "pet-other"],
                    },
                    {"operator": "quota", "per_minute": 15},
                ],
            },
            {
                "id": "clean-text",
                "nodes": [
                    {"operator": "text_check", "min_length": 10, "pattern": "great|bad"},
                    {"operator": "near_duplicate", "max_distance": 3},
                ],
            },
        ],
    }


async def test_combined_operators_match_simulate(
    tmp_path: Path, topic_factory, producer_factory, destination_factory, worker_factory
) -> None:
    destination = destination_factory()
    key = destination.add_app("ann", "pets")
    config = write_config(tmp_path / "collectors.yaml", _document(destination.url))
    # One partition keeps the arrival order equal to the file order, so the quota admits the same events.
    predictions = await topic_factory("predictions", partitions=1)
    lines = [orjson.dumps(e) for e in events(1200, seed=23, text_share=0.3)]
    await producer_factory(predictions, lines)

    worker = worker_factory(config, env={"TEST_PETS_KEY": key, "COLLECTORS_PARTITIONS": "1"})
    stats = wait_settled([worker], events=len(lines), timeout_s=120)

    report = await simulate(offline_index(config), lines)
    expected = {input_id(cid, eid) for cid, ids in report.selected.items() for eid in ids}
    stored = destination.input_ids("ann", "pets")
    assert len(stored) == len(set(stored))
    assert set(stored) == expected

    funnel = stats["collectors"]["ann/pets/uncertain-pets"]
    assert funnel == report.ledger.snapshot()["collectors"]["ann/pets/uncertain-pets"], "worker and simulate agree"
    quota_out = funnel.get("post_out:uncertain-pets/3:quota", 0)
    assert quota_out > 0, "the quota bites: 1200 events span 5 minutes of event time"
    assert funnel["posted"] <= 15 * 5
    reviews = stats["collectors"]["ann/pets/fresh-reviews"]
    assert reviews.get("post_out:clean-text/1:near_duplicate", 0) > 0, "sample reviews repeat themselves"

    # Mapped concepts became the labels of the collected inputs.
    labels = {c["id"] for item in destination.inputs("ann", "pets") for c in item.data.get("concepts", [])}
    assert labels and labels <= {"pet-dog", "pet-cat", "pet-other"}
