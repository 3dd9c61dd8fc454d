"""``collectors tail``: the decoded records of a topic as they arrive, like kcat but readable."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import orjson

from streams.core.secrets import redacted_document
from streams.kafka.producing import bootstrap_address
from streams.tools.operations.kafka import consumer, partitions


def render(record: Any, *, as_json: bool) -> str:
    """One record as a line: JSON for scripts, or ``partition/offset key value`` for people (a control record's
    key in clear, written by an earlier version, redacted)."""
    value: Any
    try:
        value = redacted_document(orjson.loads(record.value)) if record.value is not None else None
    except orjson.JSONDecodeError:
        try:
            value = record.value.decode("utf-8")
        except UnicodeDecodeError:
            value = {"base64": base64.b64encode(record.value).decode("ascii")}
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    if as_json:
        document = {"partition": record.partition, "offset": record.offset, "key": key, "value": value}
        return orjson.dumps(document).decode()
    shown = orjson.dumps(value).decode() if not isinstance(value, str) else value
    return f"{record.partition}/{record.offset} {key or '-'} {shown}"


async def tail(
    broker: str,
    topic: str,
    *,
    from_beginning: bool,
    limit: int | None,
    idle_exit_s: float | None,
    echo: Callable[[str], None],
    as_json: bool,
) -> int:
    """Print the topic's records (new ones, or all with ``from_beginning``); return how many were shown.

    Stops after ``limit`` records, or after ``idle_exit_s`` seconds without a record, or on Ctrl-C.
    """
    shown = 0
    tps = await partitions(broker, topic)
    if not tps:
        raise LookupError(
            f"topic {topic} does not exist; list the topics with `kcat -L -b {bootstrap_address(broker)}`"
        )
    async with consumer(broker) as client:
        client.assign(tps)
        if from_beginning:
            await client.seek_to_beginning(*tps)
        else:
            await client.seek_to_end(*tps)
        loop = asyncio.get_running_loop()
        last = loop.time()
        while limit is None or shown < limit:
            batches = await client.getmany(timeout_ms=500, max_records=500)
            records = [r for batch in batches.values() for r in batch]
            if not records:
                if idle_exit_s is not None and loop.time() - last >= idle_exit_s:
                    break
                continue
            last = loop.time()
            for record in records:
                echo(render(record, as_json=as_json))
                shown += 1
                if limit is not None and shown >= limit:
                    break
    return shown
