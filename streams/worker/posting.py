"""The posting agent's loop: queue records held per destination, posted in batches, each counted once.

Records of many collectors arrive mixed; one request carries up to 128 inputs to one destination app with one
key, so records are held per destination (:class:`~streams.delivery.batching.Batcher`) until a batch is full
or has lingered, and up to ``post_concurrency`` requests are in flight while reading goes on (and, when a step
after the queue calls a model, as many batches more are judged meanwhile: model calls overlap posts). Each record's
outcome (posted, duplicate, dead-lettered, dropped, filtered after the queue) is counted in its partition's
ledger once; the record is acknowledged after that ledger is saved, so an offset is committed only after its
record's outcome is known and counted. Held records are not acknowledged: after a crash or a rebalance they
are read again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from streams.core import dead_letters
from streams.core import ledger as outcome
from streams.core.ledger import Ledger
from streams.core.models import ModelRefused
from streams.core.routing import CompiledCollector, DestinationKey
from streams.core.secrets import redact
from streams.core.selection import after_queue_passes, refund
from streams.delivery.batching import Batcher, BatchRules
from streams.delivery.poster import AuthFailure, PermanentRequestFailure, Withdrawn
from streams.worker.faust_tuning import EventReader
from streams.worker.runtime import Runtime
from streams.worker.tables import PartitionLedgers, PartitionState, StateWrites

log = logging.getLogger(__name__)

DeadLetter = Callable[[bytes | None, bytes], Awaitable[None]]
READ_WITHIN_S = 0.01  # a read waits this long to fill (or until a request finishes): fewer, larger reads
SAVE_EVERY_S = 0.25  # ledgers are saved (and their records acknowledged) at most this often while posting


@dataclass(slots=True)
class Held:
    """One queue record waiting for its outcome.

    Its JSON is decoded when it is first judged or posted, not when it is read: while a destination or a model
    is down, thousands of records are held, and each then costs its bytes rather than a tree of dicts (the
    records of a collector with steps after the queue carry the original input too).
    """

    event: Any  # the Faust event, acknowledged once the outcome is counted
    partition: int
    offset: int
    collector_id: str
    decoded: dict[str, Any] | None = None

    @classmethod
    def of(cls, event: Any) -> Held:
        """The record of a queue topic's event (keyed by its collector's id)."""
        message = event.message
        key: bytes | None = message.key
        held = cls(event, message.partition, message.offset, key.decode() if key else "")
        if not key:  # not written by a worker: the id is in the record
            held.collector_id = held.record["collector_id"]
        return held

    @property
    def record(self) -> dict[str, Any]:
        """The queue record, decoded once."""
        if self.decoded is None:
            self.decoded = orjson.loads(self.event.message.value or b"{}")
        return self.decoded

    @property
    def input_id(self) -> str:
        input_id: str = self.record["input"]["id"]
        return input_id


class Posting:
    """Reads the queue topic's events and delivers them; one per posting agent."""

    def __init__(
        self, runtime: Runtime, reader: EventReader, ledgers: PartitionLedgers, dead_letter: DeadLetter
    ) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.reader = reader
        self.ledgers = ledgers
        self.dead_letter = dead_letter
        self.concurrency = settings.post_concurrency
        self.batcher: Batcher[DestinationKey, Held] = Batcher(
            BatchRules(
                size=settings.post_batch_size, linger_s=settings.post_batch_within_s, max_held=settings.post_max_held
            )
        )
        self.in_flight: set[asyncio.Task[None]] = set()
        self.post_slots = asyncio.Semaphore(self.concurrency)  # HTTP requests to destinations at once
        self.requests: set[asyncio.Future[Any]] = set()  # the model calls and HTTP exchanges of the tasks in flight
        self.abandoned = 0  # records whose request a rebalance cancelled (read again after it)
        self.abandons = 0  # rebalances begun
        self.finished: list[Any] = []  # events whose outcome is counted, acknowledged after the next save
        self.state_writes = StateWrites(runtime.tables["state"])  # memory of stateful steps, saved likewise
        self.saved_at = 0.0
        self.wake = asyncio.Event()  # set when a request finishes: the loop has work besides reading
        self.backpressure = False  # whether the queue's partitions are out of the fetch (too many held)

    async def run(self) -> None:
        """Until the worker stops: read, hold, post, count, save, acknowledge."""
        generation = self.reader.generation
        while (events := await self.reader.take(self._wait_s(), self.wake)) is not None:
            self.wake.clear()
            if self.reader.generation != generation:  # a rebalance: what is held is read again after it
                await self._drain()
                self.batcher.clear()
                self.ledgers.reset()
                generation = self.reader.generation
            now = time.monotonic()
            for event in events:
                await self._hold(event, now)
            await self._settle()
            if self.reader.flowing():
                await self._dispatch(now)
            self.runtime.posting.update(held=len(self.batcher), in_flight=len(self.in_flight), abandoned=self.abandoned)
        await self._drain()

    def _wait_s(self) -> float | None:
        """How long the next read may wait for events: until a batch is due while a request can start, or
        counted records are to be saved (a finishing request sets ``wake``)."""
        now = time.monotonic()
        waits = [self.batcher.next_due_in(now)] if len(self.in_flight) < self._task_limit() else []
        if self.finished:
            waits.append(max(0.0, self.saved_at + SAVE_EVERY_S - now))
        known = [wait for wait in waits if wait is not None]
        return min(known) if known else None

    async def _hold(self, event: Any, now: float) -> None:
        for record in await self.ledgers.take(event, self.reader.catch_up):
            self._hold_read(record, now)

    def _hold_read(self, event: Any, now: float) -> None:
        held = Held.of(event)
        collector = self.runtime.index.get(held.collector_id)
        if collector is None:  # deleted: what was queued for it is dropped, and counted
            self._count(held, outcome.DROPPED)
        else:
            self.batcher.add(collector.destination_key, held, now)

    async def _dispatch(self, now: float) -> None:
        """Start the requests that are due, while fewer than ``post_concurrency`` are in flight. While more
        than ``max_held`` records are held, the queue's partitions are not fetched: the queue waits in Kafka.
        The agent still reads what was fetched before (so Faust's drain loop, which the selecting agent
        shares, never waits on this agent's buffer): at most ``max_held`` plus one fetch and one buffer."""
        while (free := self._task_limit() - len(self._collect())) > 0:
            batches = self.batcher.due(now, limit=free)
            if not batches:
                break
            for key, items in batches:
                if self._calls_model(items):  # judged in the request's task: a model is waited on there
                    self.reader.track(held.event for held in items)
                    request = self._judge_and_post(key, items, now)
                else:  # judged here, in order (stateful steps decide as `simulate` does)
                    survivors = await self._judge(key, items, now)
                    if not survivors:
                        continue
                    self.reader.track(held.event for held in survivors)
                    request = self._post(key, survivors)
                task = asyncio.create_task(request)
                task.add_done_callback(lambda _task: self.wake.set())
                self.in_flight.add(task)
        held, limit = len(self.batcher), self.batcher.rules.max_held
        if held > limit:
            self.reader.pause_fetching()
        else:
            self.reader.resume_fetching()
        if (held > limit) != self.backpressure:
            self.backpressure = held > limit
            log.info(
                "backpressure %s: %d records held (limit %d)%s",
                "on" if self.backpressure else "off",
                held,
                limit,
                ", the queue waits in Kafka" if self.backpressure else "",
            )

    def _task_limit(self) -> int:
        """Tasks in flight at most: ``post_concurrency``, twice that when a collector's steps after the queue
        call a model (a batch waiting on its model does not hold up the posts of batches judged already)."""
        return self.concurrency * 2 if self.runtime.index.calls_models else self.concurrency

    def _calls_model(self, items: list[Held]) -> bool:
        """Whether a step after the queue of one of these records' collectors calls a model."""
        index = self.runtime.index
        return any(
            (c := index.get(i)) is not None and c.after_queue.calls_model for i in {h.collector_id for h in items}
        )

    async def _judge_and_post(self, key: DestinationKey, items: list[Held], now: float) -> None:
        judging = asyncio.ensure_future(self._judge(key, items, now))
        if not await self._outlives_rebalance(judging, items):  # a model down must not hold up a rebalance
            return
        survivors = judging.result()
        if survivors:
            await self._post(key, survivors)

    async def _outlives_rebalance(self, work: asyncio.Future[Any], items: list[Held]) -> bool:
        """Wait for ``work``; False when a rebalance cancelled it (:meth:`abandon`): its records are read
        again after the rebalance, by whoever holds their partitions."""
        self.requests.add(work)
        try:
            await asyncio.wait([work])
        finally:
            self.requests.discard(work)
            work.cancel()  # when this task is cancelled (the worker stops) before the work ended
        if work.cancelled():
            self._abandoned(items)
            return False
        return True

    def _abandoned(self, items: list[Held]) -> None:
        self.reader.untrack(held.event for held in items)
        self.abandoned += len(items)

    async def _judge(self, key: DestinationKey, items: list[Held], now: float) -> list[Held]:
        """The records of a due batch that go out in it: the steps after the queue run here, in order, or, when a
        step calls a model, for all records at once (so their calls go out together); records of a deleted
        collector are dropped, of a paused one dead-lettered; a changed key waits for its next batch."""
        judged: list[tuple[CompiledCollector, Held]] = []
        for held in items:
            collector = self.runtime.index.get(held.collector_id)
            if collector is None:
                self._count(held, outcome.DROPPED)
            elif collector.paused_by_error:
                await self._dead_letter(collector, [held], "collector_paused", collector.last_error or "", None)
            elif collector.destination_key != key:
                self.reader.untrack([held.event])
                self.batcher.add(collector.destination_key, held, now)
            else:
                judged.append((collector, held))
        if not any(collector.after_queue.calls_model for collector, _ in judged):  # in order, one at a time
            return [held for collector, held in judged if await self._passes(collector, held)]
        passed = await asyncio.gather(*(self._passes(collector, held) for collector, held in judged))
        return [held for (_, held), ok in zip(judged, passed, strict=True) if ok]

    async def _passes(self, collector: CompiledCollector, held: Held) -> bool:
        if not collector.after_queue.steps:
            return True
        ledger = Ledger()
        state = PartitionState(self.state_writes, held.partition)
        try:
            passed = await after_queue_passes(collector, held.record, ledger, state, self.runtime.models)
        except ModelRefused as exc:  # the model refused the input for good: replayable once fixed
            self.runtime.last_errors[collector.id] = str(exc)
            await self._dead_letter(collector, [held], "model_refused", str(exc), None)
            return False
        counts = ledger.collectors[collector.id]
        stopped = [(name, n) for name, n in counts.items() if name.startswith(outcome.POST_FILTERED_PREFIX)]
        for name, count in counts.items():  # notes of model nodes (kept on error), before the outcome
            if not name.startswith(outcome.POST_FILTERED_PREFIX):
                self.ledgers.note(held.partition, held.offset, collector.id, name, count)
        for name, count in stopped:  # the filter that stopped it
            self._count(held, name, count)
        return passed

    async def _post(self, key: DestinationKey, items: list[Held]) -> None:
        base_url, user_id, app_id, api_key = key
        by_id: dict[str, Held] = {}
        copies: list[Held] = []  # the same input queued twice (re-queued after a crash) goes out once
        for held in items:
            if held.input_id in by_id:
                copies.append(held)
            else:
                by_id[held.input_id] = held
        runtime = self.runtime

        collector_ids = {held.collector_id for held in items}

        def still_wanted() -> bool:
            for collector_id in collector_ids:
                current = runtime.index.get(collector_id)  # the index is replaced on every change
                if current is None or current.paused_by_error or current.destination_key != key:
                    return False
            return True

        abandons = self.abandons
        async with self.post_slots:
            if self.abandons != abandons:  # a rebalance began while this waited for a slot
                self._abandoned(items)
                return
            request = asyncio.ensure_future(
                self.runtime.poster.post_inputs(
                    base_url,
                    user_id,
                    app_id,
                    api_key,
                    [held.record["input"] for held in by_id.values()],
                    still_wanted=still_wanted,
                )
            )
            if not await self._outlives_rebalance(request, items):
                return
        try:
            result = request.result()
        except Withdrawn:  # a collector was deleted, paused or re-keyed meanwhile: judge each record again
            self.reader.untrack(held.event for held in items)
            self._hold_again(items)
            return
        except AuthFailure as exc:
            reason = f"the destination refused the key {redact(api_key)}: {exc.code} {exc.description}"
            for collector in self._collectors(items):
                log.error(
                    "collector %s paused: %s; its inputs go to the dead-letter topic, replayable", collector.id, reason
                )
                await self.runtime.pause_for_error(collector, reason)
            await self._dead_letter_each(items, "auth", reason, exc.code)
            return
        except PermanentRequestFailure as exc:
            for collector in self._collectors(items):
                self.runtime.last_errors[collector.id] = str(exc)
            await self._dead_letter_each(items, "request_refused", str(exc), exc.code)
            return
        posted_at, last_posted = time.time(), runtime.last_posted_at
        for input_id in result.delivered:
            held = by_id[input_id]
            self._count(held, outcome.POSTED)
            last_posted[held.collector_id] = posted_at
        for input_id in result.duplicates:
            self._duplicate(by_id[input_id])
        refused = {input_id: (code, description) for input_id, code, description in result.failed}
        for input_id, (code, description) in refused.items():
            await self._refused(by_id[input_id], code, description)
        for held in copies:  # as if posted after its first copy
            if held.input_id in refused:
                await self._refused(held, *refused[held.input_id])
            else:
                self._duplicate(held)

    def _duplicate(self, held: Held) -> None:
        """The destination holds the input already: count it, and give back what stateful steps took."""
        self._count(held, outcome.DUPLICATE)
        owner = self.runtime.index.get(held.collector_id)
        if owner is not None:
            refund(owner, held.record, PartitionState(self.state_writes, held.partition))

    async def _refused(self, held: Held, code: int, description: str) -> None:
        """The destination refused this input for good: to the dead-letter topic, not replayable."""
        self.runtime.last_errors[held.collector_id] = f"input refused: {code} {description}"
        letter = dead_letters.for_input(
            held.record, reason="input_refused", detail=description, status_code=code, replayable=False
        )
        await self.dead_letter(held.collector_id.encode(), letter)
        self._count(held, outcome.DEAD_LETTERED)

    def _hold_again(self, items: list[Held]) -> None:
        """Hold records again (their request was withdrawn); the next dispatch judges them anew."""
        now = time.monotonic()
        for held in items:
            collector = self.runtime.index.get(held.collector_id)
            key = collector.destination_key if collector is not None else ("", "", "", "")
            self.batcher.add(key, held, now)

    def _collectors(self, items: list[Held]) -> list[CompiledCollector]:
        found = {held.collector_id: self.runtime.index.get(held.collector_id) for held in items}
        return [collector for collector in found.values() if collector is not None]

    async def _dead_letter_each(self, items: list[Held], reason: str, detail: str, code: int | None) -> None:
        for held in items:
            collector = self.runtime.index.get(held.collector_id)
            if collector is None:
                self._count(held, outcome.DROPPED)
            else:
                await self._dead_letter(collector, [held], reason, detail, code)

    async def _dead_letter(
        self, collector: CompiledCollector, items: list[Held], reason: str, detail: str, code: int | None
    ) -> None:
        """Send records to the dead-letter topic, replayable once the cause is fixed."""
        for held in items:
            letter = dead_letters.for_input(
                held.record, reason=reason, detail=detail, status_code=code, replayable=True
            )
            await self.dead_letter(collector.id.encode(), letter)
            self._count(held, outcome.DEAD_LETTERED)

    def _count(self, held: Held, outcome_name: str, n: int = 1) -> None:
        """Count the record's one outcome in its partition's ledger (unless counted before a crash or a
        rebalance); its event is acknowledged after the next save."""
        ledger, fresh = self.ledgers.done(held.partition, held.offset)
        if fresh:
            ledger.count(held.collector_id, outcome_name, n)
        self.finished.append(held.event)

    def _collect(self) -> set[asyncio.Task[None]]:
        """Forget finished requests (an unexpected error in one stops the agent: nothing is acknowledged);
        the requests still in flight."""
        for task in [task for task in self.in_flight if task.done()]:
            self.in_flight.discard(task)
            task.result()
        return self.in_flight

    async def _settle(self, *, now: bool = False) -> None:
        """Save the changed ledgers, then acknowledge the records counted in them (at most every
        ``SAVE_EVERY_S`` unless ``now``: a ledger of 1,000 collectors is a sizeable changelog record)."""
        self._collect()
        clock = time.monotonic()
        if self.finished and (now or clock - self.saved_at >= SAVE_EVERY_S):
            counted, self.finished = self.finished, []  # requests finishing during the save wait for the next
            self.saved_at = clock
            await self.state_writes.flush()
            await self.ledgers.save()
            self.reader.ack(counted)

    def abandon(self) -> None:
        """A rebalance began: cancel the requests in flight rather than make the group wait for them (a slow
        destination held every worker's posting for as long as its requests took, retries included).

        Their records are not counted nor acknowledged here: whoever holds their partitions after the
        rebalance reads them again from the committed offset and posts them again. Input ids make that
        harmless: what the cancelled request stored comes back as a duplicate, counted once. Records whose
        outcome is counted already are saved and acknowledged as usual (the rebalance waits for those). Batches
        waiting on a model are abandoned likewise: a model that is down does not hold up the group."""
        self.abandons += 1
        for request in self.requests:
            request.cancel()

    async def _drain(self) -> None:
        """Let the requests in flight finish and settle them."""
        if self.in_flight:
            await asyncio.wait(self.in_flight)
        await self._settle(now=True)
