"""The reference model as one running service: its REST server (and gRPC server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import aiohttp

from streams.services import clarifai_grpc, web
from streams.services.model import server
from streams.services.model.grpc_service import ModelServicer
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
    """Serve the model over REST (and gRPC when ``grpc_port`` is given) while the block runs (port 0: any free
    port)."""
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(web.serving(server.create_app(service), host, port))
        bound_grpc: int | None = None
        if grpc_port is not None:
            timeout = aiohttp.ClientTimeout(total=server.DOWNLOAD_TIMEOUT_S)
            session = await stack.enter_async_context(aiohttp.ClientSession(timeout=timeout))

            async def fetch(url: str) -> bytes:
                return await server.download(session, url)

            bound_grpc = await stack.enter_async_context(
                clarifai_grpc.serving(ModelServicer(service, fetch), host, grpc_port)
            )
        yield RunningModel(url, bound_grpc)


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
