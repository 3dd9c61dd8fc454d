"""`collectors tap serve`: a pass-through for PostModelOutputs that publishes every prediction to Kafka."""

from __future__ import annotations

import asyncio
import logging
import signal

import click
import uvloop

from streams.services.tap.service import RunningTap, TapSettings, serve


@click.group()
def tap() -> None:
    """A pass-through for PostModelOutputs that publishes each prediction to the predictions topic."""


@tap.command("serve")
@click.option("--upstream", required=True, help="Base URL of the model API to stand in front of (REST).")
@click.option("--port", default=8070, show_default=True, type=click.IntRange(0, 65535), help="0 = any free port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--grpc-port",
    type=click.IntRange(0, 65535),
    help="Also serve gRPC here (service clarifai.api.V2: every call passed on, PostModelOutputs tapped).",
)
@click.option(
    "--upstream-grpc",
    metavar="TARGET",
    help="The upstream's gRPC address, host:port (plain) or https://host[:port] (TLS); needed with --grpc-port.",
)
@click.option("--auth-url", help="Where MyScopes tells who a key belongs to (GET /v2/myscopes). [default: --upstream]")
@click.option(
    "--broker",
    default="kafka://127.0.0.1:9092",
    show_default=True,
    envvar="COLLECTORS_BROKER",
    help="Kafka bootstrap [env COLLECTORS_BROKER].",
)
@click.option(
    "--topic",
    default="predictions",
    show_default=True,
    envvar="COLLECTORS_PREDICTIONS_TOPIC",
    help="Where the events go; it must exist [env COLLECTORS_PREDICTIONS_TOPIC].",
)
@click.option("--queue-records", default=10_000, show_default=True, type=click.IntRange(1), help="Events held at most.")
@click.option(
    "--queue-bytes", default=64 * 1024 * 1024, show_default=True, type=click.IntRange(1), help="Bytes held at most."
)
@click.option("--upstream-timeout", default=120.0, show_default=True, type=click.FloatRange(0.1), help="Seconds.")
def serve_command(
    upstream: str,
    port: int,
    host: str,
    grpc_port: int | None,
    upstream_grpc: str | None,
    auth_url: str | None,
    broker: str,
    topic: str,
    queue_records: int,
    queue_bytes: int,
    upstream_timeout: float,
) -> None:
    """Forward every call to --upstream unchanged and answer with its answer unchanged; publish one prediction
    event per output of each successful PostModelOutputs call to --topic. Events wait in memory (bounded by
    --queue-records and --queue-bytes) while Kafka is slow or down; past the bound they are dropped, counted
    (GET /_tap/stats) and warned about. Calls never wait for Kafka."""
    if grpc_port is not None and not upstream_grpc:
        raise click.UsageError("--grpc-port needs --upstream-grpc (the upstream's gRPC address)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = TapSettings(
        upstream=upstream,
        broker=broker,
        topic=topic,
        auth_url=auth_url,
        host=host,
        port=port,
        grpc_port=grpc_port,
        upstream_grpc=upstream_grpc,
        queue_records=queue_records,
        queue_bytes=queue_bytes,
        upstream_timeout_s=upstream_timeout,
    )

    def ready(running: RunningTap) -> None:
        grpc = f", gRPC on port {running.grpc_port}" if running.grpc_port is not None else ""
        click.echo(f"tap listening on {running.url}{grpc}; forwarding to {upstream}; publishing to {topic}")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(settings, stop=stop, on_ready=ready)

    try:
        uvloop.run(main())
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    click.echo("tap stopped")
