"""Turn workflow node lists into callables, failing at load (not at the 10,000th event) with a precise message."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError

from schemas.collectors import Node
from streams.core.operators import OPERATORS, Candidate, Decision, Stage
from streams.core.operators.base import AsyncDecision, Operator
from streams.core.operators.random_sample import RandomSampleParams
from streams.core.operators.random_sample import build as build_random_sample

ANY_GROUP = "any"


class WorkflowError(ValueError):
    """A workflow that cannot run; the message names the collector, workflow, node and field."""


@dataclass(frozen=True, slots=True)
class Step:
    """One compiled node; ``label`` names it in the funnel (e.g. ``uncertain/1:max_probability_below``)."""

    label: str
    decide: Decision | AsyncDecision
    is_async: bool = False
    stateful: bool = False
    refund: Callable[[Candidate], None] | None = None
    calls_model: bool = False


@dataclass(frozen=True, slots=True)
class Steps:
    """A compiled sequence of steps: the first that stops a candidate is reported by its label."""

    steps: tuple[Step, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(step.label for step in self.steps)

    @property
    def is_async(self) -> bool:
        return any(step.is_async for step in self.steps)

    @property
    def calls_model(self) -> bool:
        return any(step.calls_model for step in self.steps)

    def run(self, candidate: Candidate) -> str | None:
        """None when the candidate passes every (synchronous) step, else the label of the step that stopped it."""
        for step in self.steps:
            if not step.decide(candidate):
                return step.label
        return None

    async def run_async(self, candidate: Candidate) -> str | None:
        """As :meth:`run`, awaiting the steps that do I/O."""
        for step in self.steps:
            if not await _decided(step.decide(candidate)):
                return step.label
        return None


async def _decided(result: bool | Awaitable[bool]) -> bool:
    return await result if inspect.isawaitable(result) else bool(result)


RANDOM_SAMPLE_LABEL = "random_sample"


def random_sample_step(keep_fraction: float) -> Step:
    """The collector-level ``pre_queue_random_sample`` as a step."""
    return Step(RANDOM_SAMPLE_LABEL, build_random_sample(RandomSampleParams(keep_fraction=keep_fraction)))


def compile_nodes(
    nodes: Sequence[Node],
    *,
    stage: Stage,
    collector_id: str,
    workflow_id: str,
) -> tuple[Step, ...]:
    """Compile a workflow's nodes for one stage; raise :class:`WorkflowError` on any bad node."""
    _check_embeddings(nodes, collector_id, workflow_id)
    return tuple(
        _build(node, stage, collector_id, workflow_id, str(index)).step(f"{workflow_id}/{index}:{node.operator}")
        for index, node in enumerate(nodes)
    )


def _check_embeddings(nodes: Sequence[Node], collector_id: str, workflow_id: str) -> None:
    """A node judging embeddings needs a ``model`` node before it in its workflow."""
    model_seen = False
    for index, node in enumerate(nodes):
        operators = [node.operator]
        if node.operator == ANY_GROUP and isinstance(node.parameters.get("nodes"), list):
            operators = [str(child.get("operator")) for child in node.parameters["nodes"] if isinstance(child, dict)]
        found = [OPERATORS[name] for name in operators if name in OPERATORS]
        if not model_seen and any(operator.needs_embedding for operator in found):
            raise WorkflowError(
                f"collector {collector_id!r}, workflow {workflow_id!r}, node {index} ({node.operator!r}): judges "
                "the embedding of a `model` node, and no `model` node comes before it in this workflow"
            )
        model_seen = model_seen or any(operator.calls_model and not operator.needs_embedding for operator in found)


@dataclass(frozen=True, slots=True)
class _Built:
    decide: Decision | AsyncDecision
    is_async: bool = False
    stateful: bool = False
    refund: Callable[[Candidate], None] | None = None
    calls_model: bool = False

    def step(self, label: str) -> Step:
        return Step(label, self.decide, self.is_async, self.stateful, self.refund, self.calls_model)


def _build(node: Node, stage: Stage, collector_id: str, workflow_id: str, where: str) -> _Built:
    context = f"collector {collector_id!r}, workflow {workflow_id!r}, node {where} ({node.operator!r})"
    if node.operator == ANY_GROUP:
        return _build_any(node, stage, collector_id, workflow_id, where, context)
    operator = OPERATORS.get(node.operator)
    if operator is None:
        raise WorkflowError(f"{context}: unknown operator; known operators: {', '.join(sorted(OPERATORS))}, any")
    if stage not in operator.stages:
        raise WorkflowError(
            f"{context}: `{node.operator}` runs in the {'/'.join(operator.stages)}-queue workflow, "
            f"not in the {stage}-queue one"
        )
    try:
        params = operator.params.model_validate(node.parameters)
    except ValidationError as exc:
        raise WorkflowError(f"{context}: {_describe(exc)}") from None
    try:
        label = f"{workflow_id}/{where}:{node.operator}"
        decide = operator.build(params, label) if _named(operator) else operator.build(params)
    except (OSError, ValueError) as exc:
        raise WorkflowError(f"{context}: {exc}") from None
    refund = operator.refund
    return _Built(
        decide,
        operator.is_async,
        operator.stateful,
        None if refund is None else (lambda candidate: refund(params, candidate)),
        operator.calls_model,
    )


def _named(operator: Operator) -> bool:
    """Operators whose state or funnel notes are per node are built with their node's label."""
    return operator.calls_model or operator.needs_embedding


def _build_any(node: Node, stage: Stage, collector_id: str, workflow_id: str, where: str, context: str) -> _Built:
    raw_children = node.parameters.get("nodes")
    if not isinstance(raw_children, list) or not raw_children:
        raise WorkflowError(f"{context}: field `nodes` must be a non-empty list of nodes")
    children: list[_Built] = []
    for index, raw in enumerate(raw_children):
        try:
            child = Node.model_validate(raw)
        except ValidationError as exc:
            raise WorkflowError(f"{context}, child {index}: {_describe(exc)}") from None
        children.append(_build(child, stage, collector_id, workflow_id, f"{where}.{index}"))

    # Each child judges its own copy, so one child's narrowing does not leak into the next;
    # the first child that passes hands its narrowed view on.
    stateful = any(child.stateful for child in children)
    calls_model = any(child.calls_model for child in children)
    if any(child.is_async for child in children):

        async def any_of_async(candidate: Candidate) -> bool:
            for child in children:
                trial = candidate.narrowed()
                if await _decided(child.decide(trial)):
                    candidate.take_view(trial)
                    return True
            return False

        return _Built(any_of_async, True, stateful, calls_model=calls_model)

    sync_children = [cast(Decision, child.decide) for child in children]

    def any_of(candidate: Candidate) -> bool:
        for decide in sync_children:
            trial = candidate.narrowed()
            if decide(trial):
                candidate.take_view(trial)
                return True
        return False

    return _Built(any_of, False, stateful)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(parameters)"
        detail: Any = error["msg"]
        parts.append(f"field `{field}`: {detail}")
    return "; ".join(parts)
