"""The tap as one running service: its publisher, its caller lookups, its REST server (and gRPC server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import aiohttp

from streams.kafka.bounded_publisher import BoundedPublisher
from streams.services.tap import grpc_proxy, server
from streams.services.tap.callers import Callers
from streams.services.tap.tap import Tap
from streams.services.web import serving


@dataclass(frozen=True, slots=True)
class TapSettings:
    """How the tap is wired: where it forwards, where it publishes, how much it may hold."""

    upstream: str
    """Base URL of the API the tap stands in front of (REST)."""
    broker: str = "kafka://127.0.0.1:9092"
    topic: str = "predictions"
    auth_url: str | None = None
    """Where MyScopes is asked who a key belongs to; the upstream when not given."""
    host: str = "127.0.0.1"
    port: int = 0
    grpc_port: int | None = None
    upstream_grpc: str | None = None
    """The upstream's gRPC target, ``host:port`` (plain) or ``https://host[:port]`` (TLS)."""
    queue_records: int = 10_000
    queue_bytes: int = 64 * 1024 * 1024
    upstream_timeout_s: float = 120.0


@dataclass(frozen=True, slots=True)
class RunningTap:
    """Where a running tap answers, and its state."""

    url: str
    grpc_port: int | None
    tap: Tap


@asynccontextmanager
async def running(settings: TapSettings) -> AsyncIterator[RunningTap]:
    """Run the tap while the block runs; on exit, publish what is queued (up to 5 s) and stop."""
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        publisher = BoundedPublisher(
            settings.broker, settings.topic, max_records=settings.queue_records, max_bytes=settings.queue_bytes
        )
        tap = Tap(publisher, Callers(session, settings.auth_url or settings.upstream))
        publisher.start()
        stack.push_async_callback(tap.close)
        url = await stack.enter_async_context(
            serving(
                server.create_app(tap, settings.upstream, timeout_s=settings.upstream_timeout_s),
                settings.host,
                settings.port,
            )
        )
        grpc_port: int | None = None
        if settings.grpc_port is not None:
            if not settings.upstream_grpc:
                raise ValueError("a gRPC port needs the upstream's gRPC address (upstream_grpc)")
            grpc_port = await stack.enter_async_context(
                grpc_proxy.serving(tap, settings.upstream_grpc, settings.host, settings.grpc_port)
            )
        yield RunningTap(url, grpc_port, tap)


async def serve(settings: TapSettings, *, stop: asyncio.Event, on_ready: Callable[[RunningTap], None]) -> None:
    """Serve until ``stop`` is set."""
    async with running(settings) as tap:
        on_ready(tap)
        await stop.wait()
