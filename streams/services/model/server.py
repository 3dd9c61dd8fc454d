"""HTTP server of the reference model: Clarifai's PostModelOutputs (every REST binding) and the Open Inference
Protocol v2.

PostModelOutputs needs an ``Authorization: Key …`` header, as Clarifai's API does, but any key is taken: the
model serves everyone. Every model id names the same reference model (:mod:`streams.services.model.predict`),
answered as the user and app of the path, else of the body's ``user_app_id``, else the service's defaults.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from streams.services.model.inference import InferenceError, infer, metadata
from streams.services.model.outputs import ModelService, post_model_outputs, refusal, status
from streams.services.outputs_api import FAILURE, POST_MODEL_OUTPUTS_ROUTES

log = logging.getLogger(__name__)

CONN_KEY_INVALID = 11008
MAX_BODY_BYTES = 128 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 10.0

SERVICE_KEY = web.AppKey("service", ModelService)
SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)


def _json(http_status: int, document: Any) -> web.Response:
    return web.Response(status=http_status, body=orjson.dumps(document), content_type="application/json")


async def download(session: aiohttp.ClientSession, url: str) -> bytes:
    """The bytes at ``url`` (``OSError`` when it cannot be had, is not 200 or is over 20 MB)."""
    if not url.startswith(("http://", "https://")):
        raise OSError(f"cannot download {url[:80]!r}: only http:// and https:// URLs are fetched")
    try:
        async with session.get(url) as response:
            if response.status != 200:
                raise OSError(f"downloading {url[:80]} answered HTTP {response.status}")
            body = await response.content.read(MAX_DOWNLOAD_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OSError(f"cannot download {url[:80]}: {exc or type(exc).__name__}") from None
    if len(body) > MAX_DOWNLOAD_BYTES:
        raise OSError(f"{url[:80]} is over {MAX_DOWNLOAD_BYTES} bytes")
    return body


async def outputs(request: web.Request) -> web.Response:
    """PostModelOutputs: concepts and an embedding for each input."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "key" or not key.strip():
        return _json(
            401,
            {"status": status(CONN_KEY_INVALID, "API key not found", "send the header 'Authorization: Key <key>'")},
        )
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        http_status, answer = refusal(f"the body is not valid JSON: {exc}")
        return _json(http_status, answer)
    session = request.app[SESSION_KEY]

    async def fetch(url: str) -> bytes:
        return await download(session, url)

    http_status, answer = await post_model_outputs(body, request.match_info, request.app[SERVICE_KEY], fetch)
    return _json(http_status, answer)


async def model_metadata(request: web.Request) -> web.Response:
    """Open Inference Protocol: the model's tensors and labels."""
    return _json(200, metadata(request.match_info["name"], request.match_info.get("version")))


async def model_infer(request: web.Request) -> web.Response:
    """Open Inference Protocol: class probabilities and embeddings for a BYTES tensor."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return _json(400, {"error": f"the body is not valid JSON: {exc}"})
    latency = request.app[SERVICE_KEY].latency_s
    if latency:
        await asyncio.sleep(latency)
    try:
        answer = infer(request.match_info["name"], request.match_info.get("version"), body)
    except InferenceError as exc:
        return _json(400, {"error": str(exc)})
    return _json(200, answer)


async def ready(request: web.Request) -> web.Response:
    """Liveness and readiness (Open Inference Protocol's health routes, and ``/healthz``)."""
    return _json(200, {"live": True, "ready": True})


async def server_metadata(request: web.Request) -> web.Response:
    """Open Inference Protocol: the server's name and extensions."""
    return _json(200, {"name": "collectors-model", "version": "1", "extensions": []})


@web.middleware
async def _json_errors(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    """Unknown routes, wrong methods and crashes answer JSON in Clarifai's shape."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        return _json(exc.status, {"status": status(FAILURE, exc.reason, f"{request.method} {request.path}")})
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _json(500, {"status": status(FAILURE, "Internal error", "the model failed; see its log")})


def create_app(service: ModelService) -> web.Application:
    """The model's web app."""
    app = web.Application(middlewares=[_json_errors], client_max_size=MAX_BODY_BYTES)
    app[SERVICE_KEY] = service

    async def session_context(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            app[SESSION_KEY] = session
            yield

    app.cleanup_ctx.append(session_context)
    for path in POST_MODEL_OUTPUTS_ROUTES:
        app.router.add_post(path, outputs)
    app.router.add_get("/v2", server_metadata)
    app.router.add_get("/v2/health/live", ready)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/healthz", ready)
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        app.router.add_get(base, model_metadata)
        app.router.add_get(base + "/ready", ready)
        app.router.add_post(base + "/infer", model_infer)
    return app
