"""Thin Faust wiring: the selecting agent (predictions → queue) and the posting agent (queue → destination).

Each agent keeps one :class:`Ledger` per source partition in a Faust table, written once per batch with
the offset it counted up to: after a crash or a rebalance, a redelivered record is processed again (its
input id makes that harmless) but not counted twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from streams import dead_letters
from streams import ledger as outcome
from streams.decoding import DecodeError, decode_event
from streams.delivery.poster import AuthFailure, PermanentRequestFailure, Withdrawn, redact
from streams.faust_tuning import event_batches
from streams.ledger import Ledger
from streams.routing import CompiledCollector
from streams.runtime import Runtime
from streams.selection import after_queue_passes, refund, select
from streams.tables import PartitionLedgers, PartitionState

log = logging.getLogger(__name__)

DeadLetter = Callable[[bytes | None, bytes], Awaitable[None]]


def register_agents(app: faust.App, runtime: Runtime, topics: dict[str, faust.TopicT]) -> None:
    """Attach both agents to the app."""
    settings = runtime.settings
    queue_name = settings.queue_topic
    dead_letter_name = settings.dead_letter_topic

    async def dead_letter(key: bytes | None, value: bytes) -> None:
        await app.producer.send(dead_letter_name, key, value, None, None, None)

    select_ledgers = PartitionLedgers(runtime.tables["select"])
    post_ledgers = PartitionLedgers(runtime.tables["post"])

    @app.agent(topics["predictions"], name="collectors.select")
    async def select_agent(stream: faust.StreamT[bytes]) -> None:
        """Decode each event once, run the matching collectors' pre-queue steps, queue the survivors."""
        batches = event_batches(stream, settings.select_batch_size, settings.select_batch_within_s)
        await runtime.ready.wait()
        async for events in batches:
            for event in events:
                message = event.message
                ledger, fresh = select_ledgers.for_record(message.partition, message.offset)
                if fresh:
                    await _select_one(app, runtime, message, ledger, queue_name, dead_letter)
                else:  # processed before a crash or rebalance: do it again, count only what it re-queues
                    requeued = await _select_one(app, runtime, message, Ledger(), queue_name, dead_letter)
                    for collector_id in requeued:
                        ledger.count(collector_id, outcome.REQUEUED)
            select_ledgers.save()

    @app.agent(topics["queue"], name="collectors.post")
    async def post_agent(stream: faust.StreamT[bytes]) -> None:
        """Post queued inputs in batches of at most 128 per collector; the offsets advance only after."""
        batches = event_batches(stream, settings.post_read_size, settings.post_batch_within_s)
        await runtime.ready.wait()
        async for events in batches:
            groups: dict[tuple[str, int], list[tuple[dict[str, Any], Ledger]]] = defaultdict(list)
            for event in events:
                message = event.message
                ledger, fresh = post_ledgers.for_record(message.partition, message.offset)
                if not fresh:  # its outcome was counted before a crash or rebalance
                    ledger = Ledger()
                record = orjson.loads(message.value or b"{}")
                groups[(record["collector_id"], message.partition)].append((record, ledger))
            requests: list[Awaitable[None]] = []
            for (collector_id, partition), items in groups.items():
                state = PartitionState(runtime.tables["state"], partition)
                requests += await _deliver(runtime, collector_id, items, state, dead_letter)
            await _bounded(requests, settings.post_concurrency)
            post_ledgers.save()


async def _select_one(
    app: faust.App, runtime: Runtime, message: Any, ledger: Ledger, queue_name: str, dead_letter: DeadLetter
) -> list[str]:
    """Decode, select and queue one prediction; return the ids of the collectors it was queued for."""
    settings = runtime.settings
    raw: bytes = message.value or b""
    ledger.events[outcome.EVENTS] += 1
    try:
        decoded = decode_event(raw, max_bytes=settings.max_event_bytes, max_depth=settings.max_event_depth)
    except DecodeError as exc:
        ledger.events[outcome.INVALID] += 1
        letter = dead_letters.for_event(
            raw,
            reason=exc.reason,
            detail=exc.detail,
            stage="decode",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        await dead_letter(message.key, letter)
        return []
    ledger.events[outcome.DECODED] += 1
    if decoded.get("created_at") is None and message.timestamp:
        decoded["_kafka_timestamp_ms"] = int(message.timestamp * 1000)  # event time for quotas
    queued, rejected = select(decoded, runtime.index, ledger)
    for collector, record in queued:
        await app.producer.send(queue_name, collector.id.encode(), orjson.dumps(record), None, None, None)
    for rejection in rejected:
        letter = dead_letters.for_event(
            raw,
            reason=rejection.reason,
            detail=rejection.detail,
            stage="pre",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            collector_id=rejection.collector_id,
        )
        await dead_letter(rejection.collector_id.encode(), letter)
    return [collector.id for collector, _ in queued]


async def _deliver(
    runtime: Runtime,
    collector_id: str,
    items: list[tuple[dict[str, Any], Ledger]],
    state: PartitionState,
    dead_letter: DeadLetter,
) -> list[Awaitable[None]]:
    """Judge one collector's queued records with the steps after the queue; return the requests that post
    the survivors. Each outcome is counted in its record's partition ledger."""
    collector = runtime.index.get(collector_id)
    if collector is None:
        for _record, ledger in items:
            ledger.count(collector_id, outcome.DROPPED)
        return []
    if collector.paused_by_error:
        await _dead_letter_all(collector, items, dead_letter, "collector_paused", collector.last_error or "", None)
        return []
    survivors = [(r, lg) for r, lg in items if await after_queue_passes(collector, r, lg, state)]
    size = runtime.settings.post_batch_size
    return [
        _post_batch(runtime, collector, survivors[start : start + size], state, dead_letter)
        for start in range(0, len(survivors), size)
    ]


async def _bounded(requests: list[Awaitable[None]], limit: int) -> None:
    """Await the requests with at most ``limit`` in flight: a slow destination bounds memory, not grows it."""
    gate = asyncio.Semaphore(limit)

    async def gated(request: Awaitable[None]) -> None:
        async with gate:
            await request

    await asyncio.gather(*(gated(request) for request in requests))


async def _post_batch(
    runtime: Runtime,
    collector: CompiledCollector,
    items: list[tuple[dict[str, Any], Ledger]],
    state: PartitionState,
    dead_letter: DeadLetter,
) -> None:
    destination = collector.spec.destination
    by_id = {record["input"]["id"]: (record, ledger) for record, ledger in items}

    def still_wanted() -> bool:
        current = runtime.index.get(collector.id)
        return current is not None and not current.paused_by_error

    try:
        result = await runtime.poster.post_inputs(
            destination.base_url,
            destination.user_id,
            destination.app_id,
            collector.key,
            [record["input"] for record, _ in items],
            still_wanted=still_wanted,
        )
    except Withdrawn:
        current = runtime.index.get(collector.id)
        if current is None:  # deleted: what was queued for it is dropped, and counted
            for _record, ledger in items:
                ledger.count(collector.id, outcome.DROPPED)
        else:  # paused by an auth failure meanwhile: wait in the dead-letter topic, replayable
            reason = current.last_error or "collector paused"
            await _dead_letter_all(collector, items, dead_letter, "collector_paused", reason, None)
        return
    except AuthFailure as exc:
        reason = f"the destination refused the key {redact(collector.key)}: {exc.code} {exc.description}"
        log.error("collector %s paused: %s; its inputs go to the dead-letter topic, replayable", collector.id, reason)
        await runtime.pause_for_error(collector, reason)
        await _dead_letter_all(collector, items, dead_letter, "auth", reason, exc.code)
        return
    except PermanentRequestFailure as exc:
        runtime.last_errors[collector.id] = str(exc)
        await _dead_letter_all(collector, items, dead_letter, "request_refused", str(exc), exc.code)
        return
    for input_id in result.delivered:
        by_id[input_id][1].count(collector.id, outcome.POSTED)
    for input_id in result.duplicates:
        record, ledger = by_id[input_id]
        ledger.count(collector.id, outcome.DUPLICATE)
        refund(collector, record, state)
    for input_id, code, description in result.failed:
        record, ledger = by_id[input_id]
        runtime.last_errors[collector.id] = f"input refused: {code} {description}"
        letter = dead_letters.for_input(
            record, reason="input_refused", detail=description, status_code=code, replayable=False
        )
        await dead_letter(collector.id.encode(), letter)
        ledger.count(collector.id, outcome.DEAD_LETTERED)


async def _dead_letter_all(
    collector: CompiledCollector,
    items: list[tuple[dict[str, Any], Ledger]],
    dead_letter: DeadLetter,
    reason: str,
    detail: str,
    code: int | None,
) -> None:
    """Send every record to the dead-letter topic, replayable once the cause is fixed."""
    for record, ledger in items:
        letter = dead_letters.for_input(record, reason=reason, detail=detail, status_code=code, replayable=True)
        await dead_letter(collector.id.encode(), letter)
        ledger.count(collector.id, outcome.DEAD_LETTERED)
