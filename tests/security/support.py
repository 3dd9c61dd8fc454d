"""Helpers of the security tests: every record of a run's topics as raw bytes, a server that records every
request made to it, and the search for keys in what a run leaves behind."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiokafka import AIOKafkaConsumer

from streams.tools.operations.kafka import partitions


async def topics_bytes(bootstrap: str, contains: str) -> dict[str, bytes]:
    """Every record (key and value bytes) of every topic whose name contains ``contains``, by topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    found: dict[str, bytes] = {}
    try:
        for topic in sorted(t for t in await consumer.topics() if contains in t):
            tps = await partitions(bootstrap, topic)
            if not tps:
                continue
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            chunks: list[bytes] = []
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                batches = await consumer.getmany(*tps, timeout_ms=1000)
                for records in batches.values():
                    chunks.extend((record.key or b"") + b"\0" + (record.value or b"") for record in records)
            found[topic] = b"\n".join(chunks)
    finally:
        await consumer.stop()
    return found


@dataclass
class Recorder:
    """A real HTTP server that answers 200 to everything and keeps what was asked of it."""

    url: str = ""
    requests: list[str] = field(default_factory=list)


@asynccontextmanager
async def recording_server() -> AsyncIterator[Recorder]:
    """Serve a :class:`Recorder` on 127.0.0.1 while the block runs."""
    recorder = Recorder()

    async def record(request: web.Request) -> web.Response:
        recorder.requests.append(f"{request.method} {request.path_qs}")
        return web.json_response({"status": {"code": 10000, "description": "Ok"}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    recorder.url = f"http://{host}:{port}"
    try:
        yield recorder
    finally:
        await runner.cleanup()


def leaks(keys: Iterable[str], places: Mapping[str, bytes]) -> list[str]:
    """Which key (by its first 4 characters) shows in which place, in clear or as its unsalted SHA-256."""
    found = []
    for key in keys:
        forms = (key.encode(), hashlib.sha256(key.encode()).hexdigest().encode())
        found.extend(f"{key[:4]}… in {where}" for where, data in places.items() if any(f in data for f in forms))
    return found


def files_bytes(root: Path, patterns: Iterable[str]) -> dict[str, bytes]:
    """The bytes of every file under ``root`` matching any of ``patterns``, by path."""
    return {str(path): path.read_bytes() for pattern in patterns for path in root.rglob(pattern) if path.is_file()}
