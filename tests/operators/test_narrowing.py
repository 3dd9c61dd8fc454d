"""concept_threshold and concept_map: narrowing concepts and regions, never touching the shared event."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.workflows import WorkflowError

from .support import candidate, compile_one, concept, event, node_error, region

DOG = concept("ai_dog", 0.9, "dog")
CAT = concept("ai_cat", 0.4, "cat")
CAR = concept("ai_car", 0.7, "car")


def test_threshold_keeps_satisfying_concepts_by_id_or_name() -> None:
    decide = compile_one("concept_threshold", concepts={"dog": 0.8, "ai_cat": 0.5})
    evt = event([DOG, CAT, CAR])
    before = copy.deepcopy(evt)
    seen = candidate(evt)
    assert decide(seen)
    assert seen.concepts == [DOG]
    assert evt == before  # the shared event is untouched


def test_threshold_id_entry_wins_over_name_entry_and_wildcard() -> None:
    decide = compile_one("concept_threshold", concepts={"ai_dog": 0.95, "dog": 0.1, "*": 0.6})
    seen = candidate(event([DOG, CAT, CAR]))
    assert decide(seen)
    assert seen.concepts == [CAR]  # dog by id needs 0.95; car by "*"; cat below "*"


def test_threshold_default_comparator_includes_the_threshold() -> None:
    assert compile_one("concept_threshold", concepts={"dog": 0.9})(candidate(event([DOG])))
    assert not compile_one("concept_threshold", concepts={"dog": 0.9}, comparator="GREATER_THAN")(
        candidate(event([DOG]))
    )


@pytest.mark.parametrize(
    ("comparator", "kept"),
    [
        ("GREATER_THAN", ["ai_dog"]),
        ("GREATER_THAN_OR_EQUAL", ["ai_dog", "ai_car"]),
        ("LESS_THAN", ["ai_cat"]),
        ("LESS_THAN_OR_EQUAL", ["ai_cat", "ai_car"]),
        ("EQUAL", ["ai_car"]),
    ],
)
def test_threshold_comparators(comparator: str, kept: list[str]) -> None:
    seen = candidate(event([DOG, CAT, CAR]))
    assert compile_one("concept_threshold", concepts={"*": 0.7}, comparator=comparator)(seen)
    assert [c["id"] for c in seen.concepts] == kept


def test_threshold_stops_when_nothing_satisfies_or_no_concepts() -> None:
    decide = compile_one("concept_threshold", concepts={"dog": 0.95})
    assert not decide(candidate(event([DOG, CAT])))
    assert not decide(candidate(event([])))
    assert not decide(candidate(event(None)))


def test_threshold_drops_regions_without_a_satisfying_concept() -> None:
    decide = compile_one("concept_threshold", concepts={"dog": 0.8})
    evt = event(regions=[region(DOG, CAT, rid="r1"), region(CAT, rid="r2"), {"id": "r3"}])
    before = copy.deepcopy(evt)
    seen = candidate(evt)
    assert decide(seen)
    assert [(r["id"], r["data"]["concepts"]) for r in seen.regions] == [("r1", [DOG])]
    assert seen.regions[0]["region_info"] == evt["output"]["data"]["regions"][0]["region_info"]
    assert evt == before
    assert not decide(candidate(event(regions=[region(CAT)])))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"concepts": {}}, "concepts"),
        ({"concepts": {"dog": 1.2}}, "concepts.dog"),
        ({"concepts": {"": 0.5}}, "concepts"),
        ({"concepts": {"dog": 0.5}, "comparator": "ABOVE"}, "comparator"),
    ],
)
def test_threshold_bad_parameters(params: dict[str, object], field: str) -> None:
    with pytest.raises(WorkflowError, match=node_error("concept_threshold") + f"field `{field}"):
        compile_one("concept_threshold", **params)


@settings(max_examples=200)
@given(
    st.lists(st.floats(0, 1), max_size=6),
    st.floats(0, 1),
    st.sampled_from(["GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN", "LESS_THAN_OR_EQUAL"]),
)
def test_threshold_agrees_with_direct_computation(values: list[float], threshold: float, comparator: str) -> None:
    compare = {
        "GREATER_THAN": float.__gt__,
        "GREATER_THAN_OR_EQUAL": float.__ge__,
        "LESS_THAN": float.__lt__,
        "LESS_THAN_OR_EQUAL": float.__le__,
    }[comparator]
    seen = candidate(event([concept(f"c{i}", v) for i, v in enumerate(values)]))
    expected = [f"c{i}" for i, v in enumerate(values) if compare(float(v), threshold)]
    assert compile_one("concept_threshold", concepts={"*": threshold}, comparator=comparator)(seen) == bool(expected)
    assert [c["id"] for c in seen.concepts] == expected


GRAPH = [
    {"subject": "dog", "predicate": "synonym", "object": "pet-dog"},
    {"subject": "ai_puppy", "predicate": "hyponym", "object": "dog"},
    {"subject": "pet-cat", "predicate": "hypernym", "object": "kitten"},
    {"subject": "cat", "predicate": "synonym", "object": "pet-cat"},
    {"subject": "animal", "predicate": "hypernym", "object": "dog"},
]
TARGETS = ["pet-dog", "pet-cat"]


def test_map_replaces_concepts_with_targets_taking_the_highest_source_value() -> None:
    decide = compile_one("concept_map", graph=GRAPH, target_concepts=TARGETS)
    evt = event([concept("ai_puppy", 0.3, "puppy"), DOG, concept("k", 0.5, "kitten"), CAR])
    before = copy.deepcopy(evt)
    seen = candidate(evt)
    assert decide(seen)
    assert seen.concepts == [{"id": "pet-dog", "value": 0.9}, {"id": "pet-cat", "value": 0.5}]
    assert evt == before


def test_map_never_maps_onto_narrower_concepts() -> None:
    decide = compile_one("concept_map", graph=GRAPH, target_concepts=TARGETS)
    assert not decide(candidate(event([concept("ai_animal", 0.9, "animal"), CAR])))
    assert not decide(candidate(event([])))


def test_map_follows_only_the_chosen_predicates() -> None:
    puppy = [concept("ai_puppy", 0.3, "puppy")]
    assert compile_one("concept_map", graph=GRAPH, target_concepts=TARGETS)(candidate(event(puppy)))
    only_synonyms = compile_one("concept_map", graph=GRAPH, target_concepts=TARGETS, follow=["synonym"])
    assert not only_synonyms(candidate(event(puppy)))  # puppy → dog is a hyponym relation
    assert only_synonyms(candidate(event([DOG])))


def test_map_target_named_directly_and_cycles() -> None:
    cyclic = [
        {"subject": "a", "predicate": "synonym", "object": "b"},
        {"subject": "b", "predicate": "hyponym", "object": "a"},
    ]
    decide = compile_one("concept_map", graph=cyclic, target_concepts=["pet-dog", "b"])
    seen = candidate(event([concept("pet-dog", 0.2), concept("a", 0.6)]))
    assert decide(seen)
    assert seen.concepts == [{"id": "pet-dog", "value": 0.2}, {"id": "b", "value": 0.6}]


def test_map_regions() -> None:
    decide = compile_one("concept_map", graph=GRAPH, target_concepts=TARGETS)
    seen = candidate(event(regions=[region(CAR, rid="r1"), region(CAT, rid="r2")]))
    assert decide(seen)
    assert [(r["id"], r["data"]["concepts"]) for r in seen.regions] == [("r2", [{"id": "pet-cat", "value": 0.4}])]


def test_map_reads_a_graph_file_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "graph.yaml").write_text("- {subject: dog, predicate: synonym, object: pet-dog}\n")
    (tmp_path / "graph.json").write_text('[{"subject": "cat", "predicate": "synonym", "object": "pet-cat"}]')
    monkeypatch.chdir(tmp_path)
    assert compile_one("concept_map", graph="graph.yaml", target_concepts=TARGETS)(candidate(event([DOG])))
    assert compile_one("concept_map", graph="graph.json", target_concepts=TARGETS)(candidate(event([CAT])))


def test_map_bad_graph_files_fail_the_load(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match=node_error("concept_map") + ".*No such file"):
        compile_one("concept_map", graph=str(tmp_path / "missing.yaml"), target_concepts=TARGETS)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {subject: dog, predicate: sibling, object: pet-dog}\n")
    with pytest.raises(WorkflowError, match=node_error("concept_map") + r"knowledge graph .*bad.yaml: 0.predicate"):
        compile_one("concept_map", graph=str(bad), target_concepts=TARGETS)
    bad.write_text("[unclosed\n")
    with pytest.raises(WorkflowError, match="is not valid YAML/JSON"):
        compile_one("concept_map", graph=str(bad), target_concepts=TARGETS)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"graph": GRAPH}, "target_concepts"),
        ({"graph": GRAPH, "target_concepts": []}, "target_concepts"),
        ({"graph": [{"subject": "a", "predicate": "is", "object": "b"}], "target_concepts": ["b"]}, "graph"),
        ({"graph": GRAPH, "target_concepts": ["b"], "follow": ["cousin"]}, "follow.0"),
    ],
)
def test_map_bad_parameters(params: dict[str, object], field: str) -> None:
    with pytest.raises(WorkflowError, match=node_error("concept_map") + f"field `{field}"):
        compile_one("concept_map", **params)
