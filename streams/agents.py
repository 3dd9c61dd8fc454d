"""Thin Faust wiring: the selecting agent (predictions → queue) and the posting agent (queue → destination)."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, cast

import faust
import orjson

from schemas.inputs_api import MAX_INPUTS_PER_REQUEST
from streams import dead_letters
from streams import ledger as outcome
from streams.decoding import DecodeError, decode_event
from streams.delivery.poster import AuthFailure, PermanentRequestFailure, redact
from streams.routing import CompiledCollector
from streams.runtime import Runtime
from streams.selection import post_queue_passes, select

log = logging.getLogger(__name__)


def register_agents(app: faust.App, runtime: Runtime, topics: dict[str, faust.TopicT]) -> None:
    """Attach both agents to the app."""
    settings = runtime.settings
    ledger = runtime.ledger
    queue_name = settings.queue_topic
    dead_letter_name = settings.dead_letter_topic

    async def dead_letter(key: bytes | None, value: bytes) -> None:
        await app.producer.send(dead_letter_name, key, value, None, None, None)

    @app.agent(topics["predictions"], name="collectors.select")
    async def select_agent(stream: faust.StreamT[bytes]) -> None:
        """Decode each event once, run the matching collectors' pre-queue steps, queue the survivors."""
        batches = cast(faust.Stream[bytes], stream).take_events(
            settings.select_batch_size, within=settings.select_batch_within_s
        )
        async for events in batches:
            for event in events:
                message = event.message
                raw: bytes = message.value or b""
                ledger.events[outcome.EVENTS] += 1
                try:
                    decoded = decode_event(raw, max_bytes=settings.max_event_bytes, max_depth=settings.max_event_depth)
                except DecodeError as exc:
                    ledger.events[outcome.INVALID] += 1
                    await dead_letter(
                        message.key,
                        dead_letters.for_event(
                            raw,
                            reason=exc.reason,
                            detail=exc.detail,
                            stage="decode",
                            topic=message.topic,
                            partition=message.partition,
                            offset=message.offset,
                        ),
                    )
                    continue
                ledger.events[outcome.DECODED] += 1
                queued, rejected = select(decoded, runtime.index, ledger)
                for collector, record in queued:
                    await app.producer.send(queue_name, collector.id.encode(), orjson.dumps(record), None, None, None)
                for rejection in rejected:
                    await dead_letter(
                        rejection.collector_id.encode(),
                        dead_letters.for_event(
                            raw,
                            reason=rejection.reason,
                            detail=rejection.detail,
                            stage="pre",
                            topic=message.topic,
                            partition=message.partition,
                            offset=message.offset,
                            collector_id=rejection.collector_id,
                        ),
                    )

    @app.agent(topics["queue"], name="collectors.post")
    async def post_agent(stream: faust.StreamT[bytes]) -> None:
        """Post queued inputs in batches of at most 128 per collector; the offsets advance only after."""
        batches = cast(faust.Stream[bytes], stream).take_events(
            settings.post_batch_size, within=settings.post_batch_within_s
        )
        async for events in batches:
            by_collector: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for event in events:
                record = orjson.loads(event.message.value or b"{}")
                by_collector[record["collector_id"]].append(record)
            for collector_id, records in by_collector.items():
                collector = runtime.index.get(collector_id)
                if collector is None:
                    ledger.count(collector_id, outcome.DROPPED, len(records))
                    continue
                survivors = [r for r in records if await post_queue_passes(collector, r, ledger)]
                for start in range(0, len(survivors), MAX_INPUTS_PER_REQUEST):
                    await _post_batch(
                        runtime, collector, survivors[start : start + MAX_INPUTS_PER_REQUEST], dead_letter
                    )


async def _post_batch(
    runtime: Runtime, collector: CompiledCollector, records: list[dict[str, Any]], dead_letter: Any
) -> None:
    ledger = runtime.ledger
    destination = collector.spec.destination
    by_id = {r["input"]["id"]: r for r in records}
    try:
        result = await runtime.poster.post_inputs(
            destination.base_url, destination.user_id, destination.app_id, collector.key, [r["input"] for r in records]
        )
    except AuthFailure as exc:
        message = f"destination refused the key {redact(collector.key)}: {exc.code} {exc.description}"
        runtime.last_errors[collector.id] = message
        log.error("collector %s: %s; its inputs go to the dead-letter topic, replayable", collector.id, message)
        for record in records:
            await dead_letter(
                collector.id.encode(),
                dead_letters.for_input(record, reason="auth", detail=message, status_code=exc.code, replayable=True),
            )
        ledger.count(collector.id, outcome.DEAD_LETTERED, len(records))
        return
    except PermanentRequestFailure as exc:
        runtime.last_errors[collector.id] = str(exc)
        for record in records:
            await dead_letter(
                collector.id.encode(),
                dead_letters.for_input(
                    record, reason="request_refused", detail=str(exc), status_code=exc.code, replayable=True
                ),
            )
        ledger.count(collector.id, outcome.DEAD_LETTERED, len(records))
        return
    ledger.count(collector.id, outcome.POSTED, len(result.delivered))
    ledger.count(collector.id, outcome.DUPLICATE, len(result.duplicates))
    for input_id, code, description in result.failed:
        runtime.last_errors[collector.id] = f"input refused: {code} {description}"
        await dead_letter(
            collector.id.encode(),
            dead_letters.for_input(
                by_id[input_id], reason="input_refused", detail=description, status_code=code, replayable=False
            ),
        )
    ledger.count(collector.id, outcome.DEAD_LETTERED, len(result.failed))
