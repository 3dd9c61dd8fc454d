"""Thin Faust wiring: the selecting agent (predictions → queue) and the posting agent (queue → destination).

Each agent keeps one :class:`Ledger` per source partition in a Faust table, saved with which records it
counted before those records are acknowledged: after a crash or a rebalance, a redelivered record is
processed again (its input id makes that harmless) but not counted twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust
import orjson

from streams.core import dead_letters
from streams.core import ledger as outcome
from streams.core.decoding import DecodeError, decode_event
from streams.core.ledger import Ledger
from streams.core.selection import select
from streams.worker import faust_private
from streams.worker.faust_consumer import App
from streams.worker.faust_tuning import EventReader
from streams.worker.posting import READ_WITHIN_S, Posting
from streams.worker.queueing import QueueWriter
from streams.worker.runtime import Runtime

log = logging.getLogger(__name__)

DeadLetter = Callable[[bytes | None, bytes], Awaitable[None]]


def register_agents(app: faust.App, runtime: Runtime, topics: dict[str, faust.TopicT]) -> None:
    """Attach both agents to the app."""
    settings = runtime.settings
    queue = QueueWriter(faust_private.aiokafka_producer(app.producer), settings.queue_topic)
    dead_letter_name = settings.dead_letter_topic

    async def dead_letter(key: bytes | None, value: bytes) -> None:
        await app.producer.send(dead_letter_name, key, value, None, None, None)
        if runtime.on_dead_letter is not None:
            runtime.on_dead_letter(value)

    select_ledgers, post_ledgers = runtime.ledgers["select"], runtime.ledgers["post"]

    @app.agent(topics["predictions"], name="collectors.select")
    async def select_agent(stream: faust.StreamT[bytes]) -> None:
        """Decode each event once, run the matching collectors' pre-queue steps, queue the survivors."""
        reader = EventReader(stream, max_size=settings.select_batch_size, within_s=settings.select_batch_within_s)
        await runtime.ready.wait()
        generation = reader.generation
        while (events := await reader.take()) is not None:
            if reader.generation != generation:  # a rebalance: ledgers are read again from the table
                select_ledgers.reset()
                generation = reader.generation
            reader.track(events)
            for event in events:
                for record in await select_ledgers.take(event, reader.catch_up):
                    await select_record(record.message)
            await asyncio.shield(finish(events))

    async def finish(events: list[Any]) -> None:
        """Queue a batch's records, save the ledgers counting them, acknowledge the batch. Shielded: a worker
        stopping (SIGTERM cancels the agent) between the first two steps would leave queue records that no
        saved ledger counts; the next holder of the partition counts the batch again as new (``queued``) and
        the first copies have no count (docs/RELIABILITY.md: the known gap, which a kill can still open)."""
        await queue.send()
        await select_ledgers.save()
        EventReader.ack(events)

    async def select_record(message: Any) -> None:
        ledger, fresh = select_ledgers.done(message.partition, message.offset)
        if fresh:
            await _select_one(runtime, message, ledger, queue, dead_letter)
        else:  # processed before a crash or rebalance: do it again, count only what it re-queues
            requeued = await _select_one(runtime, message, Ledger(), queue, dead_letter)
            for collector_id in requeued:
                ledger.count(collector_id, outcome.REQUEUED)

    @app.agent(topics["queue"], name="collectors.post")
    async def post_agent(stream: faust.StreamT[bytes]) -> None:
        """Post queued inputs in batches per destination; each offset is committed after its outcome is counted."""
        reader = EventReader(stream, max_size=settings.post_read_size, within_s=READ_WITHIN_S)
        posting = Posting(runtime, reader, post_ledgers, dead_letter)
        cast(App, app).call_on_rebalance_start(posting.abandon)
        await runtime.ready.wait()
        await posting.run()


async def _select_one(
    runtime: Runtime, message: Any, ledger: Ledger, queue: QueueWriter, dead_letter: DeadLetter
) -> list[str]:
    """Decode and select one prediction, adding its survivors to ``queue``; return the ids of the collectors
    it was queued for."""
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
        queue.add(collector.id.encode(), orjson.dumps(record), message.partition, message.offset)
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
