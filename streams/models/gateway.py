"""Model calls of ``model`` nodes: batched across the inputs at hand, limited per model, retried, cached.

Inputs asked for in the same turn of the event loop (a posting batch judged at once) go out together, up to
the model's batch size; at most ``concurrency`` calls per model are in flight, the rest wait their turn.
Transient failures (429, 5xx, timeouts, connection errors) are retried with exponential backoff and full
jitter: for as long as it takes with ``on_error: wait`` (the caller waits, and so does its queue), else up to
``attempts`` tries. Answers are cached by (model, input id) for ``cache_s`` seconds, at most ``cache_size``
of them: a redelivered record does not call the model again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from streams.core.models import ModelAnswer, ModelFailed, ModelInput, ModelRefused, ModelSpec
from streams.delivery.poster import RetryPolicy
from streams.models.clients import Client, Refused, Transient, client_for

log = logging.getLogger(__name__)

Batch = list[tuple[str, ModelInput, "asyncio.Future[ModelAnswer]"]]
GroupKey = tuple[ModelSpec, bool]
"""Calls are batched per model, inline texts apart from bytes (an Open Inference tensor has one content type)."""


@dataclass(slots=True)
class ModelStats:
    """Counters for the worker's stats: calls made, inputs sent, retries, answers from the cache, failures."""

    calls: int = 0
    inputs: int = 0
    retries: int = 0
    cached: int = 0
    failed: int = 0
    waiting: int = 0


class ModelGateway:
    """Implements ``streams.core.models.ModelCalls`` for the worker and ``collectors simulate``."""

    def __init__(self, *, cache_size: int = 10_000, cache_s: float = 600.0, retry: RetryPolicy | None = None) -> None:
        self.cache_size = cache_size
        self.cache_s = cache_s
        self.retry = retry or RetryPolicy(initial_s=0.2, max_s=10.0)
        self.stats = ModelStats()
        self._clients: dict[ModelSpec, Client] = {}
        self._limits: dict[ModelSpec, asyncio.Semaphore] = {}
        self._pending: dict[GroupKey, Batch] = {}
        self._asked: dict[tuple[ModelSpec, str], asyncio.Future[ModelAnswer]] = {}
        self._cache: OrderedDict[tuple[ModelSpec, str], tuple[float, ModelAnswer]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    async def predict(self, spec: ModelSpec, input_id: str, item: ModelInput) -> ModelAnswer:
        """The model's answer for one input; raises ``ModelFailed`` (retries spent) or ``ModelRefused``."""
        key = (spec, input_id)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            self.stats.cached += 1
            return cached[1]
        asked = self._asked.get(key)
        if asked is None:
            asked = self._asked[key] = asyncio.get_running_loop().create_future()
            group = (spec, item.text is not None)
            batch = self._pending.setdefault(group, [])
            if not batch:
                asyncio.get_running_loop().call_soon(self._flush, group)
            batch.append((input_id, item, asked))
            if len(batch) >= spec.batch_size:
                self._flush(group)
        self.stats.waiting += 1
        try:
            return await asyncio.shield(asked)
        finally:
            self.stats.waiting -= 1

    def _flush(self, group: GroupKey) -> None:
        batch = self._pending.pop(group, None)
        if batch:
            task = asyncio.create_task(self._run(group[0], batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, spec: ModelSpec, batch: Batch) -> None:
        limit = self._limits.get(spec)
        if limit is None:
            limit = self._limits[spec] = asyncio.Semaphore(spec.concurrency)
        try:
            async with limit:
                outcomes = await self._call(spec, batch)
        except (ModelFailed, ModelRefused) as exc:
            self.stats.failed += len(batch)
            for input_id, _, future in batch:
                self._settle(spec, input_id, future, exc)
            return
        now = time.monotonic()
        for (input_id, _, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, ModelAnswer):
                self._remember(spec, input_id, outcome, now)
                self._settle(spec, input_id, future, outcome)
            else:
                self.stats.failed += 1
                refusal = f"{spec.name} refused input {input_id}: {outcome}"
                self._settle(spec, input_id, future, ModelRefused(refusal) if spec.wait else ModelFailed(refusal))

    async def _call(self, spec: ModelSpec, batch: Batch) -> list[ModelAnswer | str]:
        """One batch through the model, retried as ``spec`` allows."""
        client = self._clients.get(spec)
        if client is None:
            client = self._clients[spec] = client_for(spec)
        items = [(input_id, item) for input_id, item, _ in batch]
        attempt = 0
        while True:
            attempt += 1
            self.stats.calls += 1
            self.stats.inputs += len(items)
            try:
                return await client.call(items)
            except Refused as exc:
                raise (ModelRefused(str(exc)) if spec.wait else ModelFailed(str(exc))) from None
            except Transient as exc:
                if not spec.wait and attempt >= spec.attempts:
                    raise ModelFailed(f"{spec.name}: {exc} (after {attempt} tries)") from None
                self.stats.retries += 1
                delay = self.retry.delay(attempt, exc.retry_after)
                log.warning("model %s failed (%s); retry %d in %.2fs", spec.name, exc, attempt, delay)
                await asyncio.sleep(delay)

    def _settle(
        self, spec: ModelSpec, input_id: str, future: asyncio.Future[ModelAnswer], result: ModelAnswer | Exception
    ) -> None:
        self._asked.pop((spec, input_id), None)
        if future.done():
            return
        if isinstance(result, Exception):
            future.set_exception(result)
            future.exception()  # retrieved here too: nobody may be waiting any more (a rebalance)
        else:
            future.set_result(result)

    def _remember(self, spec: ModelSpec, input_id: str, answer: ModelAnswer, now: float) -> None:
        cache = self._cache
        cache[(spec, input_id)] = (now + self.cache_s, answer)
        cache.move_to_end((spec, input_id))
        while len(cache) > self.cache_size:
            cache.popitem(last=False)

    async def close(self) -> None:
        """Stop the calls under way and close the clients."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
