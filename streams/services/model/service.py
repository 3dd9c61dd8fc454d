"""The reference model as one running service: its REST server (and gRPC server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from streams.services.model import server
from streams.services.model.outputs import ModelService


@dataclass(frozen=True, slots=True)
class RunningModel:
    """Where a running model answers."""

    url: str
    grpc_port: int | None


@asynccontextmanager
async def running(
    service: ModelService, host: str = "127.0.0.1", port: int = 0, grpc_port: int | None = None
) -> AsyncIterator[RunningModel]:
    """Serve the model while the block runs (port 0: any free port)."""
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(server.running(service, host, port))
        yield RunningModel(url, None)


async def serve(
    service: ModelService,
    host: str,
    port: int,
    grpc_port: int | None,
    *,
    stop: asyncio.Event,
    on_ready: Callable[[RunningModel], None],
) -> None:
    """Serve until ``stop`` is set."""
    async with running(service, host, port, grpc_port) as model:
        on_ready(model)
        await stop.wait()
