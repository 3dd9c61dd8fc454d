"""``concept_map``: translate the model's concepts onto a custom model's concepts through a knowledge graph.

The graph is a list of ``{subject, predicate, object}`` relations, inline or in a YAML/JSON file (a
relative path is resolved against the worker's current directory). Concepts are named by id or name.
Predicates read as in a knowledge graph: ``A hyponym B`` (A is a kind of B), ``B hypernym A`` (the same
fact), ``A synonym B`` (both ways). A concept maps onto what it is a kind of, or a synonym of, never onto
something narrower (``animal`` is no evidence of ``dog``), through any number of relations whose
predicate is in ``follow`` (default: all three). A concept whose id or name is itself a target maps onto it.

Rules: the event passes when at least one output concept maps onto a target; the mapped targets (in
``target_concepts`` order, as ``{id, value}``, the value being the highest value of the source concepts
mapping onto it) replace the concepts. Top-level concepts and each region's concepts are mapped alike; a
region with no mapped concept is dropped. No concepts: the event stops. Concepts without a finite value
are ignored.

Example node::

    {operator: concept_map, graph: examples/active-learning/graph.yaml, target_concepts: [pet-dog, pet-cat]}
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from streams.core.operators._concepts import Concept, ConceptKey, narrow, value_of
from streams.core.operators.base import Candidate, Decision, Operator

Predicate = Literal["synonym", "hypernym", "hyponym"]
PREDICATES: tuple[Predicate, ...] = ("synonym", "hypernym", "hyponym")


class Relation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: ConceptKey
    predicate: Predicate
    object: ConceptKey


_RELATIONS = TypeAdapter(list[Relation])


class ConceptMapParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    graph: str | list[Relation] = Field(
        min_length=1, description="A YAML/JSON file of relations (relative to the current directory), or the list."
    )
    follow: list[Predicate] = Field(default=list(PREDICATES), min_length=1, description="Predicates followed.")
    target_concepts: list[ConceptKey] = Field(min_length=1, description="The custom model's concept ids.")


def load_graph(path: str) -> list[Relation]:
    """Read a relations file; OSError when it cannot be read, ValueError when it is not a list of relations."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"knowledge graph {path} is not valid YAML/JSON: {exc}") from None
    try:
        return _RELATIONS.validate_python(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(file)"
        raise ValueError(
            f"knowledge graph {path}: {where}: {error['msg']} (a list of {{subject, predicate, object}} "
            f"with predicate one of {', '.join(PREDICATES)})"
        ) from None


def broader_edges(relations: Iterable[Relation], follow: Iterable[str]) -> dict[str, set[str]]:
    """For each concept, the concepts it maps onto in one step (what it is a kind of, or a synonym of)."""
    followed = set(follow)
    edges: dict[str, set[str]] = {}
    for relation in relations:
        if relation.predicate not in followed:
            continue
        if relation.predicate == "hypernym":
            pairs = [(relation.object, relation.subject)]
        else:
            pairs = [(relation.subject, relation.object)]
            if relation.predicate == "synonym":
                pairs.append((relation.object, relation.subject))
        for narrower, broader in pairs:
            edges.setdefault(narrower, set()).add(broader)
    return edges


def reachable_targets(edges: dict[str, set[str]], targets: Iterable[str]) -> dict[str, frozenset[str]]:
    """For each concept named in the graph or a target, the targets it maps onto (following any path)."""
    wanted = set(targets)
    reach: dict[str, frozenset[str]] = {}
    for start in set(edges) | wanted:
        seen = {start}
        stack = [start]
        while stack:
            for broader in edges.get(stack.pop(), ()):
                if broader not in seen:
                    seen.add(broader)
                    stack.append(broader)
        reach[start] = frozenset(seen & wanted)
    return reach


def build(params: ConceptMapParams) -> Decision:
    relations = load_graph(params.graph) if isinstance(params.graph, str) else params.graph
    targets = list(dict.fromkeys(params.target_concepts))
    reach = reachable_targets(broader_edges(relations, params.follow), targets)

    def keep(concepts: list[Concept]) -> list[Concept]:
        best: dict[str, float] = {}
        for concept in concepts:
            value = value_of(concept)
            if value is None:
                continue
            for key in (concept.get("id"), concept.get("name")):
                for target in reach.get(key, ()) if isinstance(key, str) else ():
                    best[target] = max(value, best.get(target, value))
        return [{"id": target, "value": best[target]} for target in targets if target in best]

    def concept_map(candidate: Candidate) -> bool:
        return narrow(candidate, keep)

    return concept_map


OPERATOR = Operator(name="concept_map", stages=("pre", "post"), params=ConceptMapParams, build=build)
