"""The dead-letter topic: letters grouped for people, and replayable inputs posted again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.inputs_api import MAX_INPUTS_PER_REQUEST
from streams.core.routing import CompiledCollector
from streams.delivery.poster import Poster
from streams.tools.operations import kafka
from streams.tools.operations.posting import RETRY, Tally, post_batch

EVENT_LEVEL = "-"
"""The collector column of letters about an event no collector could read (malformed events)."""


@dataclass(slots=True)
class LetterGroup:
    """Letters of one collector with one reason, replayable or not."""

    collector_id: str
    reason: str
    replayable: bool
    count: int
    oldest: str
    newest: str

    def to_json(self) -> dict[str, Any]:
        return {
            "collector_id": self.collector_id,
            "reason": self.reason,
            "replayable": self.replayable,
            "count": self.count,
            "oldest": self.oldest,
            "newest": self.newest,
        }


async def read_letters(broker: str, topic: str) -> list[dict[str, Any]]:
    """Every letter from the start of the topic to its current end; a record that is not JSON is listed
    with the reason ``unreadable``."""
    letters: list[dict[str, Any]] = []
    tps = await kafka.partitions(broker, topic)
    if not tps:
        return letters
    async with kafka.consumer(broker) as client:
        async for record in kafka.read_from_start(client, tps):
            try:
                letter = orjson.loads(record.value or b"")
            except orjson.JSONDecodeError:
                letter = None
            letters.append(letter if isinstance(letter, dict) else {"reason": "unreadable", "at": ""})
    return letters


def group(letters: list[dict[str, Any]]) -> list[LetterGroup]:
    """Counts by (collector, reason, replayable), with the oldest and newest ``at``; largest groups first."""
    groups: dict[tuple[str, str, bool], LetterGroup] = {}
    for letter in letters:
        key = (letter.get("collector_id") or EVENT_LEVEL, str(letter.get("reason")), bool(letter.get("replayable")))
        at = str(letter.get("at") or "")
        found = groups.get(key)
        if found is None:
            groups[key] = LetterGroup(*key, count=1, oldest=at, newest=at)
        else:
            found.count += 1
            found.oldest, found.newest = min(found.oldest, at), max(found.newest, at)
    return sorted(groups.values(), key=lambda g: (-g.count, g.collector_id, g.reason))


def table(groups: list[LetterGroup]) -> str:
    """One row per group, for people."""
    headers = ["collector", "reason", "replayable", "count", "oldest", "newest"]
    rows = [
        [g.collector_id, g.reason, "yes" if g.replayable else "no", str(g.count), g.oldest, g.newest] for g in groups
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    )


def replayable_inputs(letters: list[dict[str, Any]], collector_id: str) -> list[dict[str, Any]]:
    """The inputs of the collector's replayable letters, each once (a letter may have been written twice)."""
    inputs: dict[str, dict[str, Any]] = {}
    for letter in letters:
        item = letter.get("input")
        if letter.get("replayable") and letter.get("collector_id") == collector_id and isinstance(item, dict):
            inputs.setdefault(str(item["id"]), item)
    return list(inputs.values())


async def replay(collector: CompiledCollector, inputs: list[dict[str, Any]], progress: Callable[[int], None]) -> Tally:
    """Post the inputs again, in batches of at most 128, with the collector's current key."""
    tally = Tally()
    poster = Poster(retry=RETRY)
    try:
        for start in range(0, len(inputs), MAX_INPUTS_PER_REQUEST):
            batch = inputs[start : start + MAX_INPUTS_PER_REQUEST]
            tally.add(await post_batch(poster, collector, batch))
            progress(len(batch))
    finally:
        await poster.close()
    return tally
