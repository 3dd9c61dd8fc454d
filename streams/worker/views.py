"""The worker's web endpoints: health, the ledger of the partitions it holds, and its collectors."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.web import Request, Response, View

from streams.worker import faust_private
from streams.worker.runtime import Runtime


def register_views(app: faust.App, runtime: Runtime) -> None:
    """Mount ``/collectors/stats/``, ``/collectors/partitions/``, ``/collectors/list/``,
    ``/collectors/tasks/``, ``/collectors/group/`` and ``/collectors/healthz/``."""

    @app.page("/collectors/stats/")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            """The ledgers summed; ``?funnels=false`` leaves out the per-collector funnels (events, totals and
            pending only: cheap to poll with many collectors)."""
            funnels = request.query.get("funnels", "true").lower() != "false"
            active = {(tp.topic, tp.partition) for tp in app.assignor.assigned_actives()}
            totals = runtime.totals(active, funnels=funnels)
            snapshot: dict[str, Any] = totals.snapshot(funnels=funnels)
            snapshot["pending"] = totals.pending()
            snapshot["ready"] = runtime.ready.is_set()
            snapshot["last_errors"] = dict(runtime.last_errors)
            snapshot["config_errors"] = dict(runtime.config_errors)
            snapshot["collectors_loaded"] = len(runtime.index)
            snapshot["poster"] = {
                "requests": runtime.poster.requests,
                "retries": runtime.poster.retries,
                **runtime.posting,
            }
            snapshot["models"] = dataclasses.asdict(runtime.models.stats)
            return self.json(snapshot)

    @app.page("/collectors/partitions/")
    class Partitions(View):
        async def get(self, request: Request) -> Response:
            return self.json(await _positions(app, runtime))

    @app.page("/collectors/list/")
    class Collectors(View):
        async def get(self, request: Request) -> Response:
            return self.json(
                {
                    "collectors": [
                        {
                            "id": c.id,
                            "status": c.spec.status,
                            "last_error": c.last_error or runtime.last_errors.get(c.id),
                        }
                        for c in runtime.index
                    ]
                }
            )

    @app.page("/collectors/tasks/")
    class Tasks(View):
        async def get(self, request: Request) -> Response:
            """Every asyncio task of the worker and where it waits: what to read when a worker seems stuck."""
            return self.json({"tasks": _task_stacks()})

    @app.page("/collectors/group/")
    class Group(View):
        async def get(self, request: Request) -> Response:
            """This worker in its consumer group: its id, the group's generation, rebalances seen, whether one
            is under way, and how many partitions of the agents' topics it holds."""
            watched = {runtime.settings.predictions_topic, runtime.settings.queue_topic}
            return self.json(
                {
                    "worker_id": runtime.settings.worker_id,
                    "generation": app.consumer_generation_id,
                    "rebalances": app.rebalancing_count,
                    "rebalancing": app.rebalancing,
                    "partitions": sum(1 for tp in app.consumer.assignment() if tp.topic in watched),
                }
            )

    @app.page("/collectors/healthz/")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok", "ready": runtime.ready.is_set()})


def _task_stacks() -> list[dict[str, Any]]:
    """Each task's name and the chain of coroutines it is suspended in, outermost first."""
    stacks = []
    for task in asyncio.all_tasks():
        frames: list[str] = []
        awaited: Any = task.get_coro()
        while awaited is not None and len(frames) < 30:
            if isinstance(awaited, asyncio.Task):  # awaiting another task: follow it
                awaited = awaited.get_coro()
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is not None:
                frames.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        stacks.append({"name": task.get_name(), "at": frames})
    return sorted(stacks, key=lambda entry: entry["name"])


async def _positions(app: faust.App, runtime: Runtime) -> dict[str, dict[str, int | bool | None]]:
    """Per assigned partition of the two topics the agents read: fetch position, committed offset, end."""
    consumer: Any = app.consumer  # Faust's Consumer: committed offsets and paused partitions are not in ConsumerT
    watched = {runtime.settings.predictions_topic, runtime.settings.queue_topic}
    paused = faust_private.paused_partitions(consumer)
    positions: dict[str, dict[str, int | bool | None]] = {}
    for tp in sorted(consumer.assignment()):
        if tp.topic not in watched:
            continue
        try:
            position = await consumer.position(tp)
            end = consumer.highwater(tp)
        except (KafkaError, AssertionError):  # a rebalance took the partition away meanwhile: not ours to show
            continue  # (aiokafka raises IllegalStateError from position(), AssertionError from highwater())
        positions[f"{tp.topic}:{tp.partition}"] = {
            "position": position,
            "committed": faust_private.committed_offset(consumer, tp),
            "end": end,
            "paused": tp in paused,
        }
    return positions
