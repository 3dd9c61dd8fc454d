"""The ``model`` node against the reference model service, over each protocol, feeding the concept operators."""

from __future__ import annotations

from typing import Any

import pytest

from streams.core.operators import OPERATORS
from streams.core.operators.base import Candidate
from streams.core.workflows import WorkflowError
from streams.models.gateway import ModelGateway
from streams.services.model.inference import LABELS
from streams.services.model.predict import predict_text
from streams.services.model.service import RunningModel
from tests.models.support import collector, run, text_event

TEXTS = [
    "a dog and a cat in the park",
    "I loved the pizza, great food",
    "is this bus late again?",
    "terrible awful broken train",
    "the sky over the sea and a tree",
]


def node_for(protocol: str, model: RunningModel, **extra: Any) -> dict[str, Any]:
    if protocol == "clarifai-rest":
        base = {"protocol": "clarifai", "url": model.url, "user_id": "clarifai", "app_id": "main", "key": "any"}
    elif protocol == "clarifai-grpc":
        base = {"protocol": "clarifai", "transport": "grpc", "url": f"127.0.0.1:{model.grpc_port}", "key": "any"}
    else:
        base = {"protocol": "open_inference", "url": model.url}
    return {"operator": "model", "model_id": "reference", **base, **extra}


def expected_concepts(text: str) -> list[tuple[str, float]]:
    """What the reference model answers, computed from the model's own code (Clarifai: its scores; Open
    Inference: its probabilities over the labels)."""
    return [(c["id"], c["value"]) for c in predict_text(text).concepts(max_concepts=200)]  # type: ignore[misc]


@pytest.mark.parametrize("protocol", ["clarifai-rest", "clarifai-grpc", "open_inference"])
async def test_both_protocols_answer_concepts_and_embeddings(
    protocol: str, model_service: RunningModel, gateway: ModelGateway
) -> None:
    compiled = collector([node_for(protocol, model_service, use_as_labels=True)])
    events = [text_event(f"e{i}", text) for i, text in enumerate(TEXTS)]
    passed, _ = await run(compiled, events, gateway)
    assert len(passed) == len(TEXTS)
    assert gateway.stats.calls == 1, "the five inputs at hand go out in one call"
    for record, text in zip(passed, TEXTS, strict=True):
        labels = record["input"]["data"]["concepts"]
        prediction = predict_text(text)
        if protocol == "open_inference":
            probabilities = dict(zip(LABELS, prediction.probabilities(), strict=True))
            assert {c["id"]: c["value"] for c in labels} == pytest.approx(probabilities)
        else:
            expected = expected_concepts(text)
            assert [c["id"] for c in labels] == [label for label, _ in expected]
            assert [c["value"] for c in labels] == pytest.approx([value for _, value in expected])


async def test_open_inference_labels_given_in_the_node(model_service: RunningModel, gateway: ModelGateway) -> None:
    renamed = [f"class-{i}" for i in range(len(LABELS))]
    compiled = collector([node_for("open_inference", model_service, labels=renamed, use_as_labels=True)])
    (record,), _ = await run(compiled, [text_event("e", TEXTS[0])], gateway)
    top = max(record["input"]["data"]["concepts"], key=lambda c: c["value"])
    best = max(zip(predict_text(TEXTS[0]).probabilities(), renamed, strict=True))
    assert top["id"] == best[1]


JUDGES = [
    {"operator": "concept_threshold", "concepts": {"animal": 0.4, "negative": 0.7}},
    {"operator": "max_probability_below", "threshold": 0.7},
    {"operator": "min_probability_above", "threshold": 0.7},
    {"operator": "margin_below", "margin": 0.3},
    {"operator": "entropy_above", "threshold": 0.5},
    {
        "operator": "concept_map",
        "graph": [{"subject": "animal", "predicate": "synonym", "object": "pet"}],
        "target_concepts": ["pet"],
    },
]


@pytest.mark.parametrize("judge", JUDGES, ids=[j["operator"] for j in JUDGES])
async def test_a_model_node_feeds_each_concept_operator(
    judge: dict[str, Any], model_service: RunningModel, gateway: ModelGateway
) -> None:
    """The operator after the node judges the model's answer exactly as it judges a source model's output."""
    compiled = collector([node_for("clarifai-rest", model_service), judge])
    events = [text_event(f"e{i}", text) for i, text in enumerate(TEXTS)]
    passed, ledger = await run(compiled, events, gateway)
    operator = OPERATORS[judge["operator"]]
    decide = operator.build(operator.params.model_validate({k: v for k, v in judge.items() if k != "operator"}))
    expected = []
    for event, text in zip(events, TEXTS, strict=True):
        concepts = predict_text(text).concepts(max_concepts=200)
        if decide(Candidate("me/pets/c", event, list(concepts), [], {})):  # type: ignore[arg-type]
            expected.append(event["id"])
    assert [r["event_id"] for r in passed] == expected
    assert 0 < len(expected) < len(TEXTS), "the judge must split the texts"
    stopped = ledger.collectors["me/pets/c"].get("post_out:w/1:" + judge["operator"], 0)
    assert stopped == len(TEXTS) - len(expected)


async def test_novelty_keeps_far_inputs_and_drops_near_ones(model_service: RunningModel, gateway: ModelGateway) -> None:
    compiled = collector(
        [node_for("open_inference", model_service), {"operator": "novelty_above", "min_distance": 0.1}]
    )
    state: dict[str, Any] = {}
    first, _ = await run(compiled, [text_event("a", TEXTS[0]), text_event("b", TEXTS[1])], gateway, state)
    assert [r["event_id"] for r in first] == ["a", "b"]
    again, ledger = await run(
        compiled,
        [text_event("c", TEXTS[0]), text_event("d", TEXTS[0] + " a dog"), text_event("e", TEXTS[3])],
        gateway,
        state,
    )
    assert [r["event_id"] for r in again] == ["e"], "the same text, and a near one, are not new"
    assert ledger.collectors["me/pets/c"]["post_out:w/1:novelty_above"] == 2


async def test_novelty_passes_an_event_read_again(model_service: RunningModel, gateway: ModelGateway) -> None:
    """After a crash or a rebalance an event that passed is judged again: it meets its own embedding, and
    passes; another event with the same text does not."""
    compiled = collector(
        [node_for("open_inference", model_service), {"operator": "novelty_above", "min_distance": 0.1}]
    )
    state: dict[str, Any] = {}
    await run(compiled, [text_event("a", TEXTS[0])], gateway, state)
    again, _ = await run(compiled, [text_event("a", TEXTS[0]), text_event("b", TEXTS[0])], gateway, state)
    assert [r["event_id"] for r in again] == ["a"]
    assert state["novelty|me/pets/c|w/1:novelty_above|0|ids"] == ["a"]


async def test_novelty_memory_is_bounded(model_service: RunningModel, gateway: ModelGateway) -> None:
    compiled = collector(
        [node_for("open_inference", model_service), {"operator": "novelty_above", "min_distance": 0.01, "memory": 2}]
    )
    state: dict[str, Any] = {}
    for i, text in enumerate([TEXTS[0], TEXTS[1], TEXTS[2]]):
        await run(compiled, [text_event(f"k{i}", text)], gateway, state)
    (again,), _ = await run(compiled, [text_event("z", TEXTS[0])], gateway, state)  # forgotten: new again
    assert again["event_id"] == "z"
    assert state["novelty|me/pets/c|w/1:novelty_above|meta"]["count"] == 2


async def test_similar_to_keeps_inputs_near_the_references(model_service: RunningModel, gateway: ModelGateway) -> None:
    compiled = collector(
        [
            node_for("clarifai-rest", model_service),
            {"operator": "similar_to", "max_distance": 0.3, "inputs": [{"text": {"raw": "a dog and a cat"}}]},
        ]
    )
    events = [text_event("near", "a dog and a cat in the park"), text_event("far", TEXTS[1])]
    passed, _ = await run(compiled, events, gateway)
    assert [r["event_id"] for r in passed] == ["near"]


async def test_similar_to_vectors(model_service: RunningModel, gateway: ModelGateway) -> None:
    reference = list(predict_text(TEXTS[2]).embedding)
    compiled = collector(
        [
            node_for("open_inference", model_service),
            {"operator": "similar_to", "max_distance": 0.05, "vectors": [reference]},
        ]
    )
    passed, _ = await run(compiled, [text_event("same", TEXTS[2]), text_event("other", TEXTS[4])], gateway)
    assert [r["event_id"] for r in passed] == ["same"]


def test_embedding_nodes_need_a_model_node_before_them() -> None:
    with pytest.raises(WorkflowError, match="no `model` node comes before it"):
        collector([{"operator": "novelty_above", "min_distance": 0.2}])


def test_bad_model_nodes_fail_at_load() -> None:
    with pytest.raises(WorkflowError, match="needs `key` or `key_env`"):
        collector([{"operator": "model", "protocol": "clarifai", "url": "http://x", "model_id": "m"}])
    with pytest.raises(WorkflowError, match="KEY_NOT_SET"):
        collector(
            [
                {
                    "operator": "model",
                    "protocol": "clarifai",
                    "url": "http://x",
                    "model_id": "m",
                    "key_env": "KEY_NOT_SET",
                }
            ]
        )
    with pytest.raises(WorkflowError, match="at most 128"):
        collector(
            [
                {
                    "operator": "model",
                    "protocol": "clarifai",
                    "url": "http://x",
                    "model_id": "m",
                    "key": "k",
                    "batch_size": 500,
                }
            ]
        )
