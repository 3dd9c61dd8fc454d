"""The demo's second source of predictions: calls to the reference model made through the tap.

Starts ``collectors model serve`` and ``collectors tap serve`` in front of it (publishing to the demo's
predictions topic, callers named by the demo's destination), makes PostModelOutputs calls as a user of the
destination (pictures to the general image model at the version the demo's collectors watch, texts to the
sentiment model), and stops both once the tap has published every event.
"""

from __future__ import annotations

import asyncio
import base64
import io
import time
from pathlib import Path

import aiohttp
import orjson
from PIL import Image

from streams.tools.localstack import Service, get_json, start_model, start_tap

GENERAL = "/v2/users/clarifai/apps/main/models/general-image-recognition/versions/aa7f35c01e0642fda5cf400f543e7c40"
SENTIMENT = "/v2/users/clarifai/apps/main/models/sentiment-analysis"
REVIEWS = (
    "The pizza was great and the people were friendly.",
    "Awful coffee, and the cake was bad.",
    "Is the dog allowed on the beach?",
    "Best breakfast in town, I loved it.",
)


def _picture(number: int) -> str:
    image = Image.new("RGB", (64, 48), ((number * 37) % 256, (number * 91) % 256, (number * 53) % 256))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


async def _call(tap_url: str, key: str, pictures: int) -> int:
    """PostModelOutputs calls through the tap, 4 inputs each; how many predictions they returned."""
    predicted = 0
    async with aiohttp.ClientSession(headers={"Authorization": f"Key {key}"}) as http:
        for start in range(0, pictures, 4):
            inputs = [{"data": {"image": {"base64": _picture(n)}}} for n in range(start, min(start + 4, pictures))]
            for path, body in ((GENERAL, inputs), (SENTIMENT, [{"data": {"text": {"raw": r}}} for r in REVIEWS])):
                async with http.post(f"{tap_url}{path}/outputs", data=orjson.dumps({"inputs": body})) as response:
                    predicted += len((await response.json()).get("outputs", []))
    return predicted


def predict_through_tap(*, workdir: Path, bootstrap: str, topic: str, auth_url: str, key: str, pictures: int) -> int:
    """Make predictions through a tap in front of the reference model; return how many events it published."""
    model = start_model(log=workdir / "model.log")
    services: list[Service] = [model]
    try:
        tap = start_tap(model.url, broker=bootstrap, topic=topic, auth_url=auth_url, log=workdir / "tap.log")
        services.append(tap)
        predicted = asyncio.run(_call(tap.url, key, pictures))
        deadline = time.monotonic() + 60
        while get_json(f"{tap.url}/_tap/stats")["publisher"]["published"] < predicted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the tap did not publish its {predicted} events within 60 s; see {tap.log}")
            time.sleep(0.2)
        return predicted
    finally:
        for service in reversed(services):
            service.stop()
