"""Loading an input's image, shared by ``image_check`` and ``near_duplicate``.

An image is read from ``image.base64`` when present, else fetched from ``image.url`` — only over http(s)
(any other scheme, ``file://`` included, is refused), within ``timeout_s`` seconds for the whole request,
and never more than ``max_bytes`` bytes (announced by Content-Length or counted while reading); the
same cap applies to the decoded base64. Only a 200 answer counts. The bytes must decode with Pillow,
fully, and the image must be within Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``).
Any failure gives None (the reason is logged at debug level): the operator stops the event.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
from base64 import b64decode
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

HTTP_SCHEMES = frozenset({"http", "https"})
_CHUNK = 65_536


class FetchParams(BaseModel):
    """Parameters of every operator that loads images."""

    model_config = ConfigDict(extra="forbid")

    max_bytes: int = Field(default=10_485_760, ge=1, description="Largest image accepted (inline or fetched).")
    timeout_s: float = Field(default=5.0, gt=0.0, le=300.0, description="Time allowed to fetch an image URL.")


async def fetch(url: str, max_bytes: int, timeout_s: float) -> bytes | None:
    """The body of a 200 answer from an http(s) URL, None when refused, failed, too slow or too large."""
    if urlsplit(url).scheme.lower() not in HTTP_SCHEMES:
        log.debug("not fetching %r: only http(s) URLs are fetched", url)
        return None
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(url) as response,
        ):
            if response.status != 200 or (response.content_length or 0) > max_bytes:
                log.debug("not reading %r: status %s, length %s", url, response.status, response.content_length)
                return None
            body = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    log.debug("stopped reading %r: over %d bytes", url, max_bytes)
                    return None
            return bytes(body)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.debug("fetching %r failed: %r", url, exc)
        return None


def decode(data: bytes) -> Image.Image | None:
    """The fully decoded image, None when Pillow cannot decode it or it is over the pixel limit."""
    try:
        image = Image.open(BytesIO(data))
        width, height = image.size
        if Image.MAX_IMAGE_PIXELS is not None and width * height > Image.MAX_IMAGE_PIXELS:
            log.debug("image of %dx%d pixels is over the limit", width, height)
            return None
        image.load()
    except Exception as exc:  # Pillow raises many kinds (OSError, SyntaxError, struct.error...) on bad data
        log.debug("image does not decode: %r", exc)
        return None
    return image


async def load_image(data: dict[str, Any], limits: FetchParams) -> Image.Image | None:
    """The input's image (``data["image"]``), decoded off the event loop; None when it has none or it fails."""
    image = data.get("image")
    if not isinstance(image, dict):
        return None
    inline, url = image.get("base64"), image.get("url")
    if isinstance(inline, str):
        try:
            raw: bytes | None = b64decode(inline)
        except (binascii.Error, ValueError):
            raw = None
    elif isinstance(url, str):
        raw = await fetch(url, limits.max_bytes, limits.timeout_s)
    else:
        raw = None
    if raw is None or len(raw) > limits.max_bytes:
        return None
    return await asyncio.to_thread(decode, raw)
