"""Collectors compiled for the hot path, indexed by the model they watch (no scan over all collectors)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from schemas.collectors import Collector, CollectorsDocument
from streams.core.operators import Stage
from streams.core.workflows import Step, Steps, compile_nodes, random_sample_step

ModelKey = tuple[str, str, str]


DestinationKey = tuple[str, str, str, str]  # base URL, user id, app id, key: what one request can carry


@dataclass(frozen=True, slots=True)
class CompiledCollector:
    """A collector ready to run: its pre-queue and post-queue steps compiled, its key resolved."""

    spec: Collector
    key: str
    pre_queue: Steps
    """Run by the selecting agent on every matching event: the stateless steps of the pre-queue workflow."""
    after_queue: Steps
    """Run by the posting agent, where records are partitioned by collector: the pre-queue workflow from its
    first stateful step on (a quota counts what was queued, shared by all workers), then the post-queue
    workflow on the original input."""
    last_error: str | None = None
    blocked: bool = False
    """Selecting but posting nothing (its key cannot be opened, or its destination is not allowed): what it
    queues waits in the dead-letter topic, replayable, until the cause is fixed."""
    id: str = field(init=False)
    """The collector's qualified id, ``user_id/app_id/collector_id`` of the app it collects into.

    Collector ids are unique within an app, so this is unique in a deployment: it keys routing, the queue
    topic, the ledger, sampling decisions and the input ids posted.
    """
    active: bool = field(init=False)
    version_id: str | None = field(init=False)
    """The source's model version, None for any."""
    caller_id: str | None = field(init=False)
    """The source's caller, None for any."""
    destination_key: DestinationKey = field(init=False)
    """Base URL, user id, app id and key: what one request to the destination can carry."""

    def __post_init__(self) -> None:
        # Read once here, not through the pydantic spec on every event: with 1,000 collectors those
        # attribute chains over a thousand objects cost the hot path measurably (docs/PERFORMANCE.md).
        spec = self.spec
        destination = spec.destination
        object.__setattr__(self, "id", f"{destination.user_id}/{destination.app_id}/{spec.id}")
        object.__setattr__(self, "active", spec.status == "active")
        object.__setattr__(self, "version_id", spec.source.model_version_id)
        object.__setattr__(self, "caller_id", spec.source.caller_user_id)
        key = (destination.base_url, destination.user_id, destination.app_id, self.key)
        object.__setattr__(self, "destination_key", key)

    @property
    def paused_by_error(self) -> bool:
        """Paused because the destination refused its key, or blocked: its queued inputs wait in the dead-letter
        topic."""
        return self.blocked or (not self.active and self.last_error is not None)

    def with_error(self, last_error: str | None) -> CompiledCollector:
        return replace(self, last_error=last_error)

    def blocked_by(self, reason: str) -> CompiledCollector:
        """This collector blocked from posting, with the reason as its last error."""
        return replace(self, last_error=reason, blocked=True)

    def paused(self, reason: str) -> CompiledCollector:
        """This collector paused, with the reason as its last error."""
        return replace(self, spec=self.spec.model_copy(update={"status": "paused"}), last_error=reason)

    def watches(self, version_id: str | None, caller_id: str | None) -> bool:
        """Whether an event of the indexed model, with this version and caller, is this collector's."""
        if self.version_id is not None and self.version_id != version_id:
            return False
        return self.caller_id is None or self.caller_id == caller_id


CompiledWorkflows = dict[tuple[int, Stage], tuple[Step, ...]]
"""Compiled workflows by (``id()`` of the workflow object, stage): what collectors of one build share."""


def _compiled(workflow: Any, stage: Stage, collector_id: str, shared: CompiledWorkflows) -> tuple[Step, ...]:
    """A workflow's steps for a stage, compiled once per ``shared``.

    Compiled steps depend on the workflow alone (operators are built from their parameters; the collector
    comes with each candidate), so collectors naming one workflow run the same steps. With 1,000 collectors
    over 10 workflows, one copy instead of 1,000 kept the offline selection ~10 us/event faster (fewer
    objects for the hot path to touch). A workflow that fails is not kept: each collector naming it fails
    with its own name in the message.
    """
    key = (id(workflow), stage)
    steps = shared.get(key)
    if steps is None:
        steps = shared[key] = compile_nodes(
            workflow.nodes, stage=stage, collector_id=collector_id, workflow_id=workflow.id
        )
    return steps


def compile_collector(
    collector: Collector, workflows: Mapping[str, Any], key: str, *, shared: CompiledWorkflows | None = None
) -> CompiledCollector:
    """Compile a collector's steps; raise ``WorkflowError`` naming what is wrong.

    ``shared``: workflows compiled for earlier collectors of the same build (the ``workflows`` objects must
    stay alive while it is used: it is keyed by their ``id()``).
    """
    shared = {} if shared is None else shared
    pre: list[Step] = []
    if collector.pre_queue_random_sample is not None:
        pre.append(random_sample_step(collector.pre_queue_random_sample))
    if collector.pre_queue_workflow_id is not None:
        pre.extend(_compiled(workflows[collector.pre_queue_workflow_id], "pre", collector.id, shared))
    # From the first stateful step (its memory is partitioned by collector after the queue) or model call (I/O,
    # batched by the posting agent) on, the pre-queue workflow runs after the queue.
    first_stateful = next((i for i, step in enumerate(pre) if step.stateful or step.calls_model), len(pre))
    after = pre[first_stateful:]
    if collector.post_queue_workflow_id is not None:
        after.extend(_compiled(workflows[collector.post_queue_workflow_id], "post", collector.id, shared))
    return CompiledCollector(
        spec=collector, key=key, pre_queue=Steps(tuple(pre[:first_stateful])), after_queue=Steps(tuple(after))
    )


class CollectorIndex:
    """Collectors by the (user, app, model) they watch; a lookup costs one dict access."""

    def __init__(self, collectors: Iterable[CompiledCollector] = ()) -> None:
        self._by_id: dict[str, CompiledCollector] = {}
        by_model: dict[ModelKey, list[CompiledCollector]] = defaultdict(list)
        for collector in collectors:
            self._by_id[collector.id] = collector
            by_model[collector.spec.source.model_key].append(collector)
        # Per model: its collectors, and whether none of them names a version or a caller (then every event
        # of the model is theirs, and no collector is asked).
        self._by_model: dict[ModelKey, tuple[list[CompiledCollector], bool]] = {
            model: (watching, all(c.version_id is None and c.caller_id is None for c in watching))
            for model, watching in by_model.items()
        }
        self.calls_models = any(c.after_queue.calls_model for c in self._by_id.values())
        """Whether a step after the queue of any collector calls a model."""

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Any:
        return iter(self._by_id.values())

    def get(self, collector_id: str) -> CompiledCollector | None:
        return self._by_id.get(collector_id)

    def matching(self, event: dict[str, Any]) -> Sequence[CompiledCollector]:
        """The collectors watching this event's model, version and caller (not to be changed)."""
        model = event["output"]["model"]
        route = self._by_model.get((model["user_id"], model["app_id"], model["id"]))
        if route is None:
            return ()
        candidates, whole = route
        if whole:
            return candidates
        version = (model.get("model_version") or {}).get("id")
        caller = (event.get("caller") or {}).get("user_id")
        return [c for c in candidates if c.watches(version, caller)]


def build_index(document: CollectorsDocument, keys: Mapping[str, str]) -> CollectorIndex:
    """Compile every collector of a document, with keys resolved by collector id."""
    workflows = {workflow.id: workflow for workflow in document.workflows}
    shared: CompiledWorkflows = {}
    return CollectorIndex(compile_collector(c, workflows, keys[c.id], shared=shared) for c in document.collectors)
