"""``image_check``: keep inputs whose image decodes and is large enough, small enough and not blank.

Rules: the image comes from ``image.base64``, else is fetched from ``image.url`` over http(s) only
(other schemes, ``file://`` included, stop the event), within ``timeout_s`` (default 5 s) and at most
``max_bytes`` bytes (default 10 MiB; it caps the download and the decoded base64 alike). An input with no
image (a text), or whose image cannot be loaded or decoded, stops. ``min_width``/``min_height`` are in
pixels (inclusive). ``not_blank: true`` stops images whose every RGB channel has a standard deviation
below 2 (out of 255): a single colour, give or take compression noise.

Example node (post-queue)::

    {operator: image_check, min_width: 224, min_height: 224, max_bytes: 5000000, not_blank: true}
"""

from __future__ import annotations

import asyncio

from PIL import Image, ImageStat
from pydantic import Field

from streams.core.operators._images import FetchParams, load_image
from streams.core.operators._inputs import input_data
from streams.core.operators.base import AsyncDecision, Candidate, Operator

BLANK_STDDEV = 2.0


class ImageCheckParams(FetchParams):
    min_width: int | None = Field(default=None, ge=1, description="Smallest width accepted, in pixels.")
    min_height: int | None = Field(default=None, ge=1, description="Smallest height accepted, in pixels.")
    not_blank: bool = Field(default=False, description="Stop images of a single colour.")


def is_blank(image: Image.Image) -> bool:
    """Whether every RGB channel is (almost) constant."""
    return all(deviation < BLANK_STDDEV for deviation in ImageStat.Stat(image.convert("RGB")).stddev)


def build(params: ImageCheckParams) -> AsyncDecision:
    def meets(image: Image.Image) -> bool:
        width, height = image.size
        return (
            width >= (params.min_width or 0)
            and height >= (params.min_height or 0)
            and not (params.not_blank and is_blank(image))
        )

    async def image_check(candidate: Candidate) -> bool:
        image = await load_image(input_data(candidate), params)
        return image is not None and await asyncio.to_thread(meets, image)

    return image_check


OPERATOR = Operator(name="image_check", stages=("post",), params=ImageCheckParams, build=build, is_async=True)
