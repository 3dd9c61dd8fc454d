"""`collectors model serve`: the reference model (PostModelOutputs and the Open Inference Protocol v2)."""

from __future__ import annotations

import asyncio
import signal

import click
import uvloop

from streams.services.model.outputs import ModelService
from streams.services.model.service import RunningModel, serve


@click.group()
def model() -> None:
    """A small deterministic model to call, tap and use in workflows."""


@model.command("serve")
@click.option("--port", default=8060, show_default=True, type=click.IntRange(0, 65535), help="0 = any free port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--grpc-port", type=click.IntRange(0, 65535), help="Also serve gRPC (V2/PostModelOutputs) here.")
@click.option("--latency-ms", default=0.0, show_default=True, type=click.FloatRange(0), help="Added to every call.")
@click.option("--user-id", default="clarifai", show_default=True, help="The model's user when a call names none.")
@click.option("--app-id", default="main", show_default=True, help="The model's app when a call names none.")
def serve_command(host: str, port: int, grpc_port: int | None, latency_ms: float, user_id: str, app_id: str) -> None:
    """Serve PostModelOutputs (Clarifai's REST bindings, and gRPC with --grpc-port) and the Open Inference
    Protocol v2 (POST /v2/models/NAME/infer, GET /v2/models/NAME). Concepts and embeddings are computed from
    each input (image statistics, text keywords): the same input always gets the same answer."""
    service = ModelService(user_id=user_id, app_id=app_id, latency_s=latency_ms / 1000.0)

    def ready(running: RunningModel) -> None:
        grpc = f", gRPC on port {running.grpc_port}" if running.grpc_port is not None else ""
        click.echo(f"model listening on {running.url}{grpc}")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(service, host, port, grpc_port, stop=stop, on_ready=ready)

    try:
        uvloop.run(main())
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    click.echo("model stopped")
