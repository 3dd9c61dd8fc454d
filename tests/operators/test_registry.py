"""The registry, the documentation and the bundled active-learning example agree with the operators."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import pytest

from streams.core.config import read_document
from streams.core.operators import OPERATORS
from streams.core.workflows import Steps, compile_nodes

from .support import candidate, concept, event

ROOT = Path(__file__).resolve().parents[2]
PRE = {"random_sample", "metadata_filter", "stratified_sample", "quota"}
POST = {"near_duplicate", "image_check", "text_check", "python"}
BOTH = {
    "max_probability_below",
    "min_probability_above",
    "concept_threshold",
    "concept_map",
    "margin_below",
    "entropy_above",
    "model",
    "novelty_above",
    "similar_to",
}
"""Concept operators judge a model node's output in either workflow."""


def test_registry_stages() -> None:
    assert set(OPERATORS) == PRE | POST | BOTH
    assert {name for name, op in OPERATORS.items() if op.stages == ("pre",)} == PRE
    assert {name for name, op in OPERATORS.items() if op.stages == ("post",)} == POST
    assert {name for name, op in OPERATORS.items() if op.stages == ("pre", "post")} == BOTH
    assert {name for name, op in OPERATORS.items() if op.is_async} == {
        "near_duplicate",
        "image_check",
        "model",
        "similar_to",
    }


def doc_section(title: str) -> str:
    docs = (ROOT / "docs" / "WORKFLOWS.md").read_text()
    return docs.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0]


@pytest.mark.parametrize("name", sorted(PRE | POST | BOTH))
def test_documented(name: str) -> None:
    section, loading = doc_section(f"`{name}`"), doc_section("Loading images (`image_check`, `near_duplicate`)")
    assert f"operator: {name}" in section  # an example node
    assert f"operator: {name}" in (import_module(OPERATORS[name].build.__module__).__doc__ or "")
    for field in OPERATORS[name].params.model_fields:
        assert f"`{field}`" in section or f"`{field}`" in loading, field


def test_active_learning_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the graph path is relative to the current directory
    document = read_document(Path("examples/active-learning/collectors.yaml"))
    (collector,) = document.collectors
    assert collector.destination.key_env
    workflows = {w.id: w for w in document.workflows}
    pre = Steps(
        compile_nodes(
            workflows[collector.pre_queue_workflow_id or ""].nodes,
            stage="pre",
            collector_id=collector.id,
            workflow_id="uncertain-pets",
        )
    )
    post = compile_nodes(
        workflows[collector.post_queue_workflow_id or ""].nodes,
        stage="post",
        collector_id=collector.id,
        workflow_id="clean-images",
    )
    assert [step.label for step in post] == ["clean-images/0:image_check", "clean-images/1:near_duplicate"]
    confident = candidate(event([concept("ai_dog", 0.97, "dog")]))
    assert pre.run(confident) == "uncertain-pets/2:max_probability_below"
    unrelated = candidate(event([concept("ai_car", 0.5, "car"), concept("ai_animal", 0.4, "animal")]))
    assert pre.run(unrelated) == "uncertain-pets/1:concept_map"
    hesitant = candidate(event([concept("ai_puppy", 0.45, "puppy"), concept("ai_kitten", 0.4, "kitten")]))
    assert pre.run(hesitant) in (None, "uncertain-pets/4:stratified_sample")
    assert hesitant.concepts == [{"id": "pet-dog", "value": 0.45}, {"id": "pet-cat", "value": 0.4}]
