"""Run one collector over past predictions still in the topic, and post what it keeps, as a worker would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer

from schemas.inputs_api import MAX_INPUTS_PER_REQUEST
from streams.core import ledger as outcome
from streams.core.decoding import DecodeError, decode_event
from streams.core.ledger import Ledger
from streams.core.routing import CollectorIndex, CompiledCollector
from streams.core.selection import after_queue_passes, refund, select
from streams.delivery.poster import Poster
from streams.models.gateway import ModelGateway
from streams.tools.operations import kafka
from streams.tools.operations.balance import FAILED
from streams.tools.operations.errors import UsageProblem
from streams.tools.operations.posting import RETRY, post_batch


def parse_timestamp(text: str) -> int:
    """Milliseconds since the epoch, from RFC 3339 / ISO 8601 (UTC unless it says otherwise) or an integer of
    milliseconds."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageProblem(f"{text!r} is not a time; give e.g. 2026-11-27T10:00:00Z or epoch milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


async def window(
    broker: str, client: AIOKafkaConsumer, topic: str, since_ms: int, until_ms: int | None
) -> tuple[kafka.Offsets, kafka.Offsets]:
    """Per partition, the first offset at or after ``since_ms`` and the end: the end offset now, or the first
    offset at or after ``until_ms``."""
    tps = await kafka.partitions(broker, topic)
    if not tps:
        raise UsageProblem(f"the topic {topic} does not exist; check --topic and --broker")
    end = await client.end_offsets(tps)
    since = await client.offsets_for_times(dict.fromkeys(tps, since_ms))
    start = {tp: end[tp] if since[tp] is None else since[tp].offset for tp in tps}
    if until_ms is not None:
        until = await client.offsets_for_times(dict.fromkeys(tps, until_ms))
        end = {tp: end[tp] if until[tp] is None else min(end[tp], until[tp].offset) for tp in tps}
    return start, end


def as_active(collector: CompiledCollector) -> CompiledCollector:
    """The collector run as active: a backfill is asked for explicitly, even of a paused collector."""
    return replace(collector, spec=collector.spec.model_copy(update={"status": "active"}), last_error=None)


async def backfill(
    client: AIOKafkaConsumer,
    start: kafka.Offsets,
    end: kafka.Offsets,
    collector: CompiledCollector,
    *,
    dry_run: bool,
    progress: Callable[[int], None],
) -> Ledger:
    """Decode each record in the window, keep what the collector's source and steps keep, post it in batches
    of at most 128 (unless ``dry_run``: then it is counted as posted); return the funnel."""
    index = CollectorIndex([collector])
    ledger = Ledger()
    state: dict[str, Any] = {}
    kept: list[dict[str, Any]] = []
    poster = Poster(retry=RETRY)
    models = ModelGateway()  # model nodes call their models, as the worker's do

    async def flush() -> None:
        if dry_run:
            ledger.count(collector.id, outcome.POSTED, len(kept))
        elif kept:
            by_id = {record["input"]["id"]: record for record in kept}
            result = await post_batch(poster, collector, [record["input"] for record in kept])
            ledger.count(collector.id, outcome.POSTED, len(result.delivered))
            ledger.count(collector.id, outcome.DUPLICATE, len(result.duplicates))
            ledger.count(collector.id, FAILED, len(result.failed))
            for input_id in result.duplicates:
                refund(collector, by_id[input_id], state)
        kept.clear()

    try:
        async for message in kafka.read_range(client, start, end):
            progress(1)
            ledger.events[outcome.EVENTS] += 1
            try:
                event = decode_event(message.value or b"")
            except DecodeError:
                ledger.events[outcome.INVALID] += 1
                continue
            ledger.events[outcome.DECODED] += 1
            if event.get("created_at") is None and message.timestamp:
                event["_kafka_timestamp_ms"] = message.timestamp  # event time for quotas, as the worker sets it
            queued, _rejected = select(event, index, ledger)
            for _collector, record in queued:
                if await after_queue_passes(collector, record, ledger, state, models):
                    kept.append(record)
            if len(kept) >= MAX_INPUTS_PER_REQUEST:
                await flush()
        await flush()
    finally:
        await poster.close()
        await models.close()
    return ledger
