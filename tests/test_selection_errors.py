"""An operator that raises stops only its own collector's judgement of the event: counted and dead-lettered."""

from __future__ import annotations

import dataclasses
from typing import Any

from schemas.collectors import CollectorsDocument
from streams.core.ledger import Ledger
from streams.core.operators.base import Candidate
from streams.core.routing import CollectorIndex, build_index
from streams.core.selection import select
from streams.core.workflows import Step, Steps

DESTINATION = {"base_url": "http://127.0.0.1:1", "user_id": "ann", "app_id": "pets", "key_env": "K"}
SOURCE = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "general"}
EVENT: dict[str, Any] = {
    "id": "evt-1",
    "output": {
        "model": {"user_id": "clarifai", "app_id": "main", "id": "general"},
        "input": {"id": "in-1", "data": {"image": {"url": "https://images.example.com/1.jpg"}}},
        "data": {"concepts": [{"id": "ai_dog", "name": "dog", "value": 0.93}]},
    },
}


def explode(candidate: Candidate) -> bool:
    raise KeyError("a bug in an operator")


def test_an_operator_that_raises_dead_letters_the_event_for_its_collector_only() -> None:
    document = CollectorsDocument.model_validate(
        {
            "collectors": [
                {"id": cid, "source": SOURCE, "destination": DESTINATION, "pre_queue_random_sample": 1.0}
                for cid in ("broken", "fine")
            ]
        }
    )
    compiled = {collector.spec.id: collector for collector in build_index(document, {"broken": "k", "fine": "k"})}
    broken = dataclasses.replace(compiled["broken"], pre_queue=Steps((Step("broken/1:explode", explode),)))
    ledger = Ledger()

    queued, rejected = select(EVENT, CollectorIndex([broken, compiled["fine"]]), ledger)

    assert [collector.id for collector, _record in queued] == ["ann/pets/fine"]
    assert [(r.collector_id, r.reason) for r in rejected] == [("ann/pets/broken", "operator_error")]
    assert "KeyError" in rejected[0].detail
    funnels = ledger.snapshot()["collectors"]
    assert funnels["ann/pets/broken"].get("operator_errors") == 1 and not funnels["ann/pets/broken"].get("queued")
    assert funnels["ann/pets/fine"].get("queued") == 1
