"""Faust, set up for throughput: settings chosen by measurement, per-event sensors off, no spinner.

Measured on this project's 2-core machine (docs/PERFORMANCE.md): each change here removes work Faust would
otherwise do for every record, without weakening a delivery guarantee.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import faust
from faust.sensors.monitor import Monitor

THROUGHPUT_SETTINGS: dict[str, Any] = {
    # Bigger fetches and polls: fewer round trips per record.
    "broker_max_poll_records": 5000,
    "consumer_max_fetch_size": 8 * 1024 * 1024,
    # Buffer a poll's worth of records per stream instead of throttling at 4096.
    "stream_buffer_maxsize": 20_000,
    # Batch produced records (queue, dead letters, changelogs) for 20 ms, up to 1 MB a batch.
    "producer_linger": 0.02,
    "producer_max_batch_size": 1024 * 1024,
    # acks=all stays: a queued input must be on the broker before its prediction's offset is committed.
    "producer_acks": -1,
}


class QuietMonitor(Monitor):
    """Faust's monitor without its per-record bookkeeping; rebalance, commit and lag tracking stay."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        """Skip per-message counters."""

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> dict[str, Any] | None:
        """Skip per-event timing."""
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None) -> None:
        """Skip per-event timing."""

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        """Skip per-message timing."""

    def on_table_get(self, table: Any, key: Any) -> None:
        """Skip per-read counters."""

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        """Skip per-write counters."""

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int, valsize: int) -> Any:
        """Skip per-send counters."""
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        """Skip per-send latency."""


class Worker(faust.Worker):
    """A worker without the terminal spinner: with it, Faust sets the root logger to DEBUG so every debug
    call in Faust and aiokafka builds a log record (and writes escape codes into log files)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None


def event_batches(stream: faust.StreamT[Any], max_size: int, within: float) -> AsyncIterator[list[Any]]:
    """The agent's events in batches of up to ``max_size``, waiting at most ``within`` seconds to fill one.

    Call it as soon as the agent starts: it subscribes the agent's channel at once, so the subscription is
    part of the worker's first one (a channel added during a rebalance would not be delivered to).

    ``Stream.take_events`` does this too, but still runs Faust's per-event iteration (a sleep, processors,
    a buffer callback) for each event. This reads the agent's channel directly and does per event only what
    that iteration must: track each message for acknowledgement, and drop the events of partitions revoked
    by a rebalance (their new owner reads them again from the committed offset). Unlike Faust's iteration,
    which skips every event fetched before a rebalance, events of partitions this worker keeps are
    processed: in the two-worker fault test, skipped events were not all fetched again. Processing an event
    twice is harmless: input ids are idempotent and the ledger counts an offset once.
    A batch is acknowledged when the agent asks for the next one, so its offsets are committed only after it
    was processed.
    """
    return _batches(stream, cast(faust.ChannelT[Any], aiter(stream.channel)), max_size, within)


async def _batches(
    stream: faust.StreamT[Any], channel: faust.ChannelT[Any], max_size: int, within: float
) -> AsyncIterator[list[Any]]:
    app = stream.app
    queue = channel.queue
    empty, get_nowait, errors = queue.empty, queue.get_nowait, queue._errors
    unacked = app.consumer.unacked
    acking_topics = app.topics.acking_topics
    flow_control = app.flow_control
    loop = asyncio.get_running_loop()
    while not stream.should_stop:
        if errors:
            raise errors.popleft()
        try:
            batch = [] if not empty() else [await channel.__anext__()]
        except StopAsyncIteration:  # the channel closed: the worker is stopping
            return
        deadline = loop.time() + within
        while len(batch) < max_size:
            if not empty():
                batch.append(get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.sleep(min(remaining, 0.005))
        while not flow_control.is_active() and not stream.should_stop:
            await asyncio.sleep(0.05)  # a rebalance is under way: hold the batch until it is over
        assigned = app.consumer.assignment()
        live = []
        for event in batch:
            message = event.message
            if message.tp not in assigned:
                continue  # revoked in a rebalance: its new owner reads it again from the committed offset
            if message.topic in acking_topics and not message.tracked:
                message.tracked = True
                unacked.add(message)
            live.append(event)
        if live:
            yield live
        for event in live:
            event.ack()
