"""``near_duplicate``: stop inputs too close to one this collector already let through.

Hashes are 64 bits: for an image, the perceptual hash of ``imagehash.phash`` (loaded as ``image_check``
loads it: ``base64``, else an http(s) ``url`` fetched within ``timeout_s`` and ``max_bytes``); for a
text (``text.raw``), a simhash of its tokens (NFKC-normalised, case-folded ``\\w+`` runs, each token
weighted by its count, hashed with blake2b). Two inputs are near duplicates when their hashes differ in
at most ``max_distance`` bits (0: identical hashes only). Images are compared with images, texts with texts.

Rules: an input with an image is judged by its image, else by its inline text; one with neither (a
text given only by url), or whose image cannot be loaded or decoded, stops. Texts with no tokens all
hash to 0. The hash of an input that passes is recorded at once (so a later node or the destination
may still drop it): ``state["near_duplicate|<collector id>|image"|"text"]`` holds the last ``memory``
hashes (default 10,000; 16 hex digits each), oldest forgotten first, and ``...|ids`` the ids of their events:
an event read again (after a crash or a rebalance) passes again rather than meet itself.

Example node (post-queue)::

    {operator: near_duplicate, max_distance: 6, memory: 20000}
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections import Counter
from hashlib import blake2b

import imagehash
from pydantic import Field

from streams.core.operators._images import FetchParams, load_image
from streams.core.operators._inputs import input_data, raw_text
from streams.core.operators.base import AsyncDecision, Candidate, Operator

BITS = 64
_TOKEN = re.compile(r"\w+")


class NearDuplicateParams(FetchParams):
    max_distance: int = Field(ge=0, le=BITS, description="Most differing hash bits for a near duplicate.")
    memory: int = Field(default=10_000, ge=1, description="Hashes remembered per collector and kind.")


def tokens(text: str) -> list[str]:
    """The text's normalised tokens."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def simhash(text: str) -> int:
    """A 64-bit simhash of the text's normalised tokens."""
    weights = [0] * BITS
    for token, count in Counter(tokens(text)).items():
        digest = int.from_bytes(blake2b(token.encode(), digest_size=8).digest(), "big")
        for bit in range(BITS):
            weights[bit] += count if digest >> bit & 1 else -count
    return sum(1 << bit for bit, weight in enumerate(weights) if weight > 0)


def distance(a: int, b: int) -> int:
    """Hamming distance of two hashes."""
    return (a ^ b).bit_count()


async def input_hash(candidate: Candidate, params: NearDuplicateParams) -> tuple[str, int] | None:
    """(kind, hash) of the input, None when it cannot be hashed."""
    data = input_data(candidate)
    if isinstance(data.get("image"), dict):
        image = await load_image(data, params)
        return None if image is None else ("image", int(str(await asyncio.to_thread(imagehash.phash, image)), 16))
    text = raw_text(data)
    return None if text is None else ("text", await asyncio.to_thread(simhash, text))


def build(params: NearDuplicateParams) -> AsyncDecision:
    async def near_duplicate(candidate: Candidate) -> bool:
        hashed = await input_hash(candidate, params)
        if hashed is None:
            return False
        kind, value = hashed
        # No await from here on: checking and recording are one step, even with events judged concurrently.
        key = f"near_duplicate|{candidate.collector_id}|{kind}"
        seen, passed = candidate.state.get(key), candidate.state.get(f"{key}|ids")
        recorded: list[str] = list(seen) if isinstance(seen, list) else []
        if any(distance(value, int(old, 16)) <= params.max_distance for old in recorded):
            # near its own hash when it passed here before (read again after a crash or a rebalance)
            return isinstance(passed, list) and candidate.event_id in passed
        candidate.state[key] = [*recorded, f"{value:016x}"][-params.memory :]
        ids = passed if isinstance(passed, list) else []
        candidate.state[f"{key}|ids"] = [*ids, candidate.event_id][-params.memory :]
        return True

    return near_duplicate


OPERATOR = Operator(
    name="near_duplicate", stages=("post",), params=NearDuplicateParams, build=build, is_async=True, stateful=True
)
