"""Deterministic synthetic prediction events shaped like a general image model's and a text model's outputs."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

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


def event(number: int, rng: random.Random, *, text_share: float = 0.2) -> dict[str, Any]:
    """Event number ``number``: an image prediction (5-20 concepts), or a text one."""
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
        data = {"image": {"url": f"https://images.example.com/{number:08d}.jpg"}}
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


def events(count: int, *, seed: int = 7, start: int = 1, text_share: float = 0.2) -> Iterator[dict[str, Any]]:
    """``count`` events, the same for the same seed."""
    rng = random.Random(seed)
    for number in range(start, start + count):
        yield event(number, rng, text_share=text_share)


def jsonl(count: int, *, seed: int = 7) -> bytes:
    """``count`` events as JSON lines."""
    return b"".join(orjson.dumps(e) + b"\n" for e in events(count, seed=seed))
