"""Faust's Kafka consumer, delivering each fetched message without a task when it can.

Faust 0.15.3 wraps every message's delivery in ``wait_first(callback(message), suspend_flow.wait())``: a task,
four futures and an ``asyncio.wait`` per message, so that a delivery blocked on a full stream buffer or on
suspended flow (a rebalance) can be interrupted. Here the delivery runs eagerly first; only one that actually
suspends gets the task and the ``wait_first``, so an interrupted delivery behaves as in Faust. While a rebalance
and its table recovery are under way, every message is delivered Faust's way: with eager delivery in that window,
a worker taking over partitions after a crash lost the messages it fetched during the seek to committed offsets
(3 of 6 kill-test runs; the cause inside Faust was not found). The profile
(docs/PERFORMANCE.md) showed this wrapping as the largest part of Faust's per-message cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from mode import Service, ServiceT


async def _drive(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    """Go on running a coroutine that suspended on ``waiting_on``, the way an asyncio Task would."""
    while True:
        try:
            if waiting_on is None:  # a bare yield: asyncio.sleep(0)
                await asyncio.sleep(0)
            else:
                waiting_on._asyncio_future_blocking = False
                try:
                    await waiting_on
                except asyncio.CancelledError:
                    if not waiting_on.done():  # this task was cancelled: cancel what it waits on, tell it
                        waiting_on.cancel()
                        waiting_on = coro.throw(asyncio.CancelledError())
                        continue
                except BaseException:
                    pass
            waiting_on = coro.send(None)
        except StopIteration as stop:
            return stop.value


class EagerConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer; its drain loop is Faust 0.15.3's own but for the eager delivery."""

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - run by the worker
        app = self.app
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = cast(AsyncIterator[Any], getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if app.rebalancing:  # a rebalance and its recovery: deliver exactly as Faust does
                                await self.wait_first(callback(message), self.suspend_flow.wait())
                            else:
                                delivery = cast(Coroutine[Any, Any, Any], callback(message))
                                try:
                                    waiting_on = delivery.send(None)
                                except StopIteration:
                                    pass  # delivered without suspending: the common case
                                else:
                                    await self.wait_first(_drive(delivery, waiting_on), self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class Transport(AIOKafkaTransport):
    """The aiokafka transport with :class:`EagerConsumer`."""

    Consumer = EagerConsumer


class App(faust.App):
    """A Faust app on :class:`Transport`."""

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)


class RawSchema(faust.Schema[bytes, bytes]):
    """Keys and values as the bytes Kafka holds, the event made directly.

    Faust's decoder passes every key and value through its serializer registry (the raw codec, settings
    lookups) to get the same bytes back; it showed as ~8% of the worker's time in the profile.
    """

    def __init__(self) -> None:
        super().__init__(key_serializer="raw", value_serializer="raw")

    def compile(self, app: Any, **kwargs: Any) -> Any:
        create_event = app.create_event

        async def decode(message: Any, *, propagate: bool = False) -> Any:
            return create_event(message.key, message.value, message.headers, message)

        return decode
