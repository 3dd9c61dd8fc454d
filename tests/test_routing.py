"""The collector index: an event reaches exactly the collectors watching its model, version and caller."""

from __future__ import annotations

from typing import Any

from schemas.collectors import CollectorsDocument
from streams.core.routing import build_index

DESTINATION = {"base_url": "http://127.0.0.1:1", "user_id": "ann", "app_id": "pets", "key_env": "K"}


def _collector(cid: str, model_id: str, **source: str) -> dict[str, Any]:
    return {
        "id": cid,
        "source": {"model_user_id": "clarifai", "model_app_id": "main", "model_id": model_id, **source},
        "destination": DESTINATION,
        "pre_queue_random_sample": 1.0,
    }


def _event(model_id: str, *, version: str | None = None, caller: str | None = None) -> dict[str, Any]:
    model: dict[str, Any] = {"user_id": "clarifai", "app_id": "main", "id": model_id}
    if version is not None:
        model["model_version"] = {"id": version}
    event: dict[str, Any] = {"id": "e1", "output": {"model": model}}
    if caller is not None:
        event["caller"] = {"user_id": caller}
    return event


def test_matching_honours_versions_and_callers_per_model() -> None:
    document = CollectorsDocument.model_validate(
        {
            "collectors": [
                _collector("all-a", "a"),
                _collector("all-a-too", "a"),
                _collector("all-b", "b"),
                _collector("b-v2", "b", model_version_id="v2"),
                _collector("b-bob", "b", caller_user_id="bob"),
                _collector("b-v2-bob", "b", model_version_id="v2", caller_user_id="bob"),
            ]
        }
    )
    index = build_index(document, {c.id: "key" for c in document.collectors})

    def ids(event: dict[str, Any]) -> list[str]:
        return [c.spec.id for c in index.matching(event)]

    assert ids(_event("a")) == ["all-a", "all-a-too"]
    assert ids(_event("a", version="v9", caller="eve")) == ["all-a", "all-a-too"]
    assert ids(_event("b")) == ["all-b"]
    assert ids(_event("b", version="v2")) == ["all-b", "b-v2"]
    assert ids(_event("b", caller="bob")) == ["all-b", "b-bob"]
    assert ids(_event("b", version="v2", caller="bob")) == ["all-b", "b-v2", "b-bob", "b-v2-bob"]
    assert ids(_event("c")) == []
