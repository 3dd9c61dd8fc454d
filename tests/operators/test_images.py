"""image_check and near_duplicate on images: inline base64 PNGs, and URLs served on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from io import BytesIO
from typing import Any

import pytest
from aiohttp import web
from PIL import Image, ImageDraw

from streams.core.operators._images import fetch
from streams.core.workflows import WorkflowError

from .support import candidate, compile_async, compile_step, concept, event, node_error


def png(width: int = 64, height: int = 48, *, blank: bool = False, variant: int = 0) -> bytes:
    """A small PNG: one colour, or shapes on a gradient (``variant`` changes the drawing)."""
    if blank:
        image = Image.new("RGB", (width, height), (200, 30, 30))
    else:
        image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
        draw = ImageDraw.Draw(image)
        if variant == 0:
            draw.ellipse((width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=(255, 255, 0))
        else:
            draw.rectangle((0, 0, width // 2, height), fill=(0, 0, 255))
            draw.line((0, height, width, 0), fill=(255, 255, 255), width=3)
    out = BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def image_event(image: dict[str, str], event_id: str = "e1") -> dict[str, Any]:
    return event([concept("ai_dog", 0.9, "dog")], data={"image": image}, event_id=event_id)


def inline(data: bytes, event_id: str = "e1") -> dict[str, Any]:
    return image_event({"base64": base64.b64encode(data).decode()}, event_id)


BIG = png(400, 300, variant=1)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """An image server on an ephemeral 127.0.0.1 port; yields its base URL."""

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=png(blank=request.query.get("blank") == "1"), content_type="image/png")

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=BIG, content_type="image/png")

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # no Content-Length: the cap must count the bytes read
        await response.prepare(request)
        for start in range(0, len(BIG), 1000):
            await response.write(BIG[start : start + 1000])
        await response.write_eof()
        return response

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(body=png(), content_type="image/png")

    async def to_file(_: web.Request) -> web.Response:
        raise web.HTTPFound("file:///etc/passwd")

    async def not_an_image(_: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/image.png", image)
    app.router.add_get("/big.png", big)
    app.router.add_get("/streamed.png", streamed)
    app.router.add_get("/slow.png", slow)
    app.router.add_get("/to-file", to_file)
    app.router.add_get("/page.html", not_an_image)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


# image_check, inline ------------------------------------------------------------------------------------


async def test_inline_sizes() -> None:
    decide = compile_async("image_check", min_width=64, min_height=48)
    assert await decide(candidate(inline(png(64, 48))))
    assert not await decide(candidate(inline(png(63, 48))))
    assert not await decide(candidate(inline(png(64, 47))))


async def test_inline_blank() -> None:
    decide = compile_async("image_check", not_blank=True)
    assert await decide(candidate(inline(png())))
    assert not await decide(candidate(inline(png(blank=True))))
    assert await compile_async("image_check")(candidate(inline(png(blank=True))))  # not asked


async def test_inline_max_bytes_and_bad_data() -> None:
    small = png()
    assert not await compile_async("image_check", max_bytes=len(small) - 1)(candidate(inline(small)))
    assert await compile_async("image_check", max_bytes=len(small))(candidate(inline(small)))
    decide = compile_async("image_check")
    assert not await decide(candidate(image_event({"base64": "not base64 at all!"})))
    assert not await decide(candidate(image_event({"base64": base64.b64encode(b"GIF89a garbage").decode()})))
    assert not await decide(candidate(inline(small[: len(small) // 2])))  # truncated: does not decode
    assert not await decide(candidate(event([], data={"text": {"raw": "a text"}})))  # no image


# image_check, by URL ------------------------------------------------------------------------------------


async def test_url_fetch(server: str) -> None:
    decide = compile_async("image_check", not_blank=True, min_width=10)
    assert await decide(candidate(image_event({"url": f"{server}/image.png"})))
    assert not await decide(candidate(image_event({"url": f"{server}/image.png?blank=1"})))
    assert not await decide(candidate(image_event({"url": f"{server}/missing.png"})))  # 404
    assert not await decide(candidate(image_event({"url": f"{server}/page.html"})))  # not an image


async def test_url_size_cap(server: str) -> None:
    for path in ("big.png", "streamed.png"):
        assert not await compile_async("image_check", max_bytes=len(BIG) - 1)(
            candidate(image_event({"url": f"{server}/{path}"}))
        )
        assert await compile_async("image_check", max_bytes=len(BIG))(
            candidate(image_event({"url": f"{server}/{path}"}))
        )
    assert await fetch(f"{server}/streamed.png", len(BIG) // 2, 5) is None
    assert await fetch(f"{server}/streamed.png", len(BIG), 5) == BIG


async def test_url_timeout(server: str) -> None:
    decide = compile_async("image_check", timeout_s=0.2)
    started = asyncio.get_running_loop().time()
    assert not await decide(candidate(image_event({"url": f"{server}/slow.png"})))
    assert asyncio.get_running_loop().time() - started < 1.5


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/x.png", "data:image/png;base64,AAAA", "/relative.png", "x"]
)
async def test_non_http_schemes_are_never_fetched(url: str) -> None:
    assert not await compile_async("image_check")(candidate(image_event({"url": url})))


async def test_redirect_to_a_file_url_is_refused(server: str) -> None:
    assert await fetch(f"{server}/to-file", 10_000, 5) is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_width": 0}, "min_width"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"not_blank": "maybe"}, "not_blank"),
        ({"min_size": 3}, "min_size"),
    ],
)
def test_image_check_bad_parameters(params: dict[str, object], field: str) -> None:
    with pytest.raises(WorkflowError, match=node_error("image_check") + f"field `{field}`"):
        compile_step("image_check", **params)


# near_duplicate on images -------------------------------------------------------------------------------


def recompressed(data: bytes) -> bytes:
    """The same picture, slightly brightened and saved as JPEG: a near duplicate."""
    image = Image.open(BytesIO(data)).convert("RGB").point(lambda v: min(255, v + 6))
    out = BytesIO()
    image.save(out, format="JPEG", quality=70)
    return out.getvalue()


async def test_near_duplicate_images(server: str) -> None:
    decide = compile_async("near_duplicate", max_distance=8)
    state: dict[str, Any] = {}
    original = png(128, 128)
    assert await decide(candidate(inline(original), state))
    assert not await decide(candidate(inline(recompressed(original), "e2"), state))
    assert not await decide(candidate(image_event({"url": f"{server}/image.png"}, "e3"), state))  # fetched: same
    assert await decide(candidate(inline(png(128, 128, variant=1), "e4"), state))
    assert len(state["near_duplicate|c1|image"]) == 2
    assert not await decide(candidate(image_event({"url": "file:///etc/hosts"}, "e5"), state))  # cannot load: stops


async def test_near_duplicate_images_and_texts_are_kept_apart() -> None:
    decide = compile_async("near_duplicate", max_distance=64)  # anything is a near duplicate of anything
    state: dict[str, Any] = {}
    assert await decide(candidate(inline(png()), state))
    assert await decide(candidate(event([], data={"text": {"raw": "hello"}}, event_id="t"), state))
    assert not await decide(candidate(event([], data={"text": {"raw": "other"}}, event_id="t2"), state))
    assert {key for key in state if not key.endswith("|ids")} == {"near_duplicate|c1|image", "near_duplicate|c1|text"}
