"""Deterministic synthetic prediction events shaped like a general image model's and a text model's outputs.

``python -m streams.tools.samples.generate`` rewrites the shipped samples (``predictions.jsonl``): 600
events whose images are inline (``base64``), so that everything they exercise works without a network,
and two malformed lines (a truncated one at line 301, one without a model at the end).
"""

from __future__ import annotations

import base64
import io
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from PIL import Image, ImageDraw

GENERAL_MODEL = {
    "id": "general-image-recognition",
    "user_id": "clarifai",
    "app_id": "main",
    "model_version": {"id": "aa7f35c01e0642fda5cf400f543e7c40"},
}
TEXT_MODEL = {
    "id": "sentiment-analysis",
    "user_id": "clarifai",
    "app_id": "main",
    "model_version": {"id": "e5a9b4c3d2f1400a9b8c7d6e5f4a3b21"},
}
IMAGE_CONCEPTS = [
    "dog", "cat", "car", "truck", "bicycle", "person", "tree", "building", "street", "sky",
    "grass", "bird", "horse", "bus", "motorcycle", "bench", "sign", "light", "fence", "water",
    "boat", "train", "bridge", "road", "snow", "beach", "mountain", "flower", "food", "animal",
]  # fmt: skip
TEXT_CONCEPTS = ["positive", "negative", "neutral"]
CAMERAS = ["north-gate", "south-gate", "lobby", "parking"]
CALLERS = ["bob", "alice", "carol"]
START = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)


def _concepts(rng: random.Random, names: list[str], count: int) -> list[dict[str, Any]]:
    chosen = rng.sample(names, count)
    weights = [rng.random() ** 3 for _ in chosen]
    top = rng.uniform(0.3, 0.99)
    scale = top / max(weights)
    values = sorted((round(min(1.0, w * scale), 4) for w in weights), reverse=True)
    return [{"id": f"ai_{name}", "name": name, "value": value} for name, value in zip(chosen, values, strict=True)]


def sample_image(number: int) -> str:
    """Image number ``number`` as base64 PNG (about 1 KB): 256x256 coloured shapes, distinct from the others;
    one in 12 is too small for a 224x224 check (160x120), one in 25 a single colour (blank)."""
    rng = random.Random(number)
    width, height = (160, 120) if number % 12 == 5 else (256, 256)
    image = Image.new("P", (width, height))
    image.putpalette([rng.randrange(256) for _ in range(16 * 3)])
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, height), fill=rng.randrange(16))
    for _ in range(0 if number % 25 == 7 else 6):
        left, top = rng.randrange(width), rng.randrange(height)
        box = (left, top, left + rng.randrange(20, 120), top + rng.randrange(20, 120))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=rng.randrange(16))
    png = io.BytesIO()
    image.save(png, "PNG", optimize=True)
    return base64.b64encode(png.getvalue()).decode("ascii")


def event(number: int, rng: random.Random, *, text_share: float = 0.2, inline_images: bool = False) -> dict[str, Any]:
    """Event number ``number``: an image prediction (5-20 concepts), or a text one; its image is given by a URL
    (that does not resolve), or with ``inline_images`` inline as base64."""
    created = (START + timedelta(milliseconds=250 * number)).isoformat().replace("+00:00", "Z")
    metadata = {"camera": rng.choice(CAMERAS), "shift": rng.choice(["day", "night"]), "frame": number}
    if rng.random() < text_share:
        model: dict[str, Any] = TEXT_MODEL
        data: dict[str, Any] = {
            "text": {"raw": f"review {number}: the product was {rng.choice(['great', 'bad', 'ok'])}"}
        }
        concepts = _concepts(rng, TEXT_CONCEPTS, 3)
    else:
        model = GENERAL_MODEL
        image = (
            {"base64": sample_image(number)}
            if inline_images
            else {"url": f"https://images.example.com/{number:08d}.jpg"}
        )
        data = {"image": image}
        concepts = _concepts(rng, IMAGE_CONCEPTS, rng.randint(5, 20))
    data["metadata"] = metadata
    return {
        "id": f"evt-{number:07d}",
        "created_at": created,
        "caller": {"user_id": rng.choice(CALLERS)},
        "output": {
            "id": f"out-{number:07d}",
            "model": model,
            "input": {"id": f"in-{number:07d}", "data": data},
            "data": {"concepts": concepts},
        },
    }


def events(
    count: int, *, seed: int = 7, start: int = 1, text_share: float = 0.2, inline_images: bool = False
) -> Iterator[dict[str, Any]]:
    """``count`` events, the same for the same seed."""
    rng = random.Random(seed)
    for number in range(start, start + count):
        yield event(number, rng, text_share=text_share, inline_images=inline_images)


def jsonl(count: int, *, seed: int = 7, inline_images: bool = False) -> bytes:
    """``count`` events as JSON lines."""
    return b"".join(orjson.dumps(e) + b"\n" for e in events(count, seed=seed, inline_images=inline_images))


TRUNCATED = b'{"id": "evt-broken", "output": '
WITHOUT_MODEL = b'{"id":"evt-no-model","output":{"input":{"data":{"image":{"base64":"aGVsbG8="}}}}}'


def shipped_samples() -> bytes:
    """The content of the shipped ``predictions.jsonl``."""
    lines = jsonl(600, inline_images=True).splitlines(keepends=True)
    return b"".join([*lines[:300], TRUNCATED + b"\n", *lines[300:], WITHOUT_MODEL + b"\n"])


if __name__ == "__main__":
    sys.stdout.buffer.write(shipped_samples())
