"""HTTP server of the reference destination: the inputs API (PostInputs, ListInputs, GetInput) and MyScopes,
as Clarifai's API spells them (over gRPC too, through :func:`serve`'s ``grpc_port``).

Conventions (every body is `{"status": {"code", "description"[, "details"]}, ...}`):

* POST inputs: each input gets its own status: 30000 stored, 30100 duplicate (an input with that id is
  already stored; not stored again), 30104 invalid (permanent; `details` says what to fix). The top
  status is 10000 with HTTP 200 when all inputs are 30000; 10010 MIXED_STATUS with HTTP 200 when at
  least one input is not 30000 but at least one is 30000 or 30100 (so a batch of duplicates only is
  HTTP 200 / 10010); 10020 FAILURE with HTTP 400 when every input is invalid (nothing stored).
* Whole-request refusals carry no per-input statuses: 401/11008 (no, unknown or revoked key),
  403/11007 (key lacks the scope or is for another app), 404/10020 (unknown user or app), 404/30102 (GetInput
  of an id the app does not have),
  400/30105 (over 128 inputs), 400/10020 (body not JSON or not `{"inputs": [...]}`; or, on `/v2/inputs`,
  a key of every app of its user, which must name the app in the path), 413/10020 (body too large),
  429/11005 and 5xx/10020 (injected faults, decided before anything is stored).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from http import HTTPStatus
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.inputs_api import MAX_INPUTS_PER_REQUEST, Input, StatusCode
from streams.services.clarifai_grpc import bridged
from streams.services.destination.store import (
    SCOPE_ALL,
    SCOPE_LIST_INPUTS,
    SCOPE_POST_INPUTS,
    BaseStore,
    InsertOutcome,
    KeyRecord,
    redact_key,
)
from streams.services.web import serving

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 128 * 1024 * 1024
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_PER_PAGE = 1000
INPUTS_PATH = "/v2/users/{user_id}/apps/{app_id}/inputs"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FaultConfig(BaseModel):
    """Injected faults, set with `POST /_faults` (the whole config is replaced on each call)."""

    model_config = ConfigDict(extra="forbid")

    down: bool = False
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    error_status: Literal[429, 500, 502, 503, 504] = 500
    delay_s: float = Field(default=0.0, ge=0.0, le=60.0)
    seed: int | None = None


_BATCH_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128)
BATCH_BUCKETS = ("1", "2", "3-4", "5-8", "9-16", "17-32", "33-64", "65-128", "129+")


def _batch_bucket(size: int) -> str:
    """The histogram bucket of a batch of `size` inputs."""
    for bound, label in zip(_BATCH_BOUNDS, BATCH_BUCKETS, strict=False):
        if size <= bound:
            return label
    return BATCH_BUCKETS[-1]


class ServerState:
    """Mutable per-app state: fault config, its random generator and request counters."""

    def __init__(self, rng: random.Random) -> None:
        self.faults = FaultConfig()
        self.rng = rng
        self.requests: Counter[str] = Counter()
        self.http_statuses: Counter[str] = Counter()
        self.status_codes: Counter[str] = Counter()
        self.inputs: Counter[str] = Counter()
        self.batch_sizes: Counter[str] = Counter()

    def stats(self) -> dict[str, Any]:
        """Counters as returned by `GET /_stats`."""
        return {
            "requests": dict(self.requests),
            "http_statuses": dict(self.http_statuses),
            "status_codes": dict(self.status_codes),
            "inputs": {outcome: self.inputs[outcome] for outcome in ("stored", "duplicate", "invalid")},
            "batch_sizes": {bucket: self.batch_sizes[bucket] for bucket in BATCH_BUCKETS},
        }


STORE_KEY = web.AppKey("store", BaseStore)
STATE_KEY = web.AppKey("state", ServerState)
CODE_KEY = web.ResponseKey("status_code", int)
APP_KEY = web.RequestKey("app", tuple[str, str])


def app_of(request: web.Request) -> tuple[str, str]:
    """The (user_id, app_id) of an authorised inputs request: the path's, or (Clarifai's bindings without the
    app, ``/v2/inputs``) the app of the caller's key."""
    return request[APP_KEY]


def _status(code: StatusCode, description: str, details: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"code": int(code), "description": description}
    if details:
        status["details"] = details
    return status


def _reply(
    http_status: int,
    code: StatusCode,
    description: str,
    details: str = "",
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body = {"status": _status(code, description, details), **extra}
    response = web.Response(
        status=http_status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )
    response[CODE_KEY] = int(code)
    return response


def _ok(**extra: Any) -> web.Response:
    return _reply(200, StatusCode.SUCCESS, "Ok", **extra)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's own errors (unknown route, wrong method, body too large) and crashes into JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 404:
            details = f"no route {request.method} {request.path}; inputs live at {INPUTS_PATH}"
        elif exc.status == 405:
            details = f"{request.method} is not allowed on {request.path}"
        elif exc.status == 413:
            details = f"the body is over {MAX_BODY_BYTES} bytes; send fewer or smaller inputs per request"
        else:
            details = exc.text or ""
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return _reply(exc.status, StatusCode.FAILURE, exc.reason, details, headers=allow)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _reply(500, StatusCode.FAILURE, "Internal error", "the server failed; see its log")


@web.middleware
async def _count(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count responses of the inputs API routes by route, HTTP status and top status code."""
    response = await handler(request)
    route = request.match_info.route.name
    if route is not None:
        state = request.app[STATE_KEY]
        state.requests[route] += 1
        state.http_statuses[str(response.status)] += 1
        if CODE_KEY in response:
            state.status_codes[str(response[CODE_KEY])] += 1
    return response


async def _faults_gate(request: web.Request, *, post: bool) -> web.Response | None:
    """The injected-fault response for this request, if any (down: every inputs route; rest: POST only)."""
    state = request.app[STATE_KEY]
    faults = state.faults
    if faults.down:
        return _reply(
            503,
            StatusCode.FAILURE,
            "Service unavailable",
            "injected fault: the destination is down",
            headers={"Retry-After": "1"},
        )
    if not post:
        return None
    if faults.delay_s:
        await asyncio.sleep(faults.delay_s)
    if faults.error_rate and state.rng.random() < faults.error_rate:
        if faults.error_status == 429:
            return _reply(
                429,
                StatusCode.CONN_THROTTLED,
                "Request throttled",
                "injected fault: retry after 1 s",
                headers={"Retry-After": "1"},
            )
        return _reply(
            faults.error_status,
            StatusCode.FAILURE,
            HTTPStatus(faults.error_status).phrase,
            f"injected fault: HTTP {faults.error_status}; nothing was stored, retry the request",
        )
    return None


def _authorize(request: web.Request, scope: str) -> web.Response | KeyRecord:
    """The caller's key record if it may use `scope` on the request's app (see :func:`app_of`), else the
    400/401/403/404 refusal."""
    header = request.headers.get("Authorization", "")
    scheme, _, clear_key = header.partition(" ")
    clear_key = clear_key.strip()
    if scheme.lower() != "key" or not clear_key:
        return _reply(
            401,
            StatusCode.CONN_KEY_INVALID,
            "API key not found",
            "send the header 'Authorization: Key <your API key>'",
        )
    record = request.app[STORE_KEY].find_key(clear_key)
    if record is None:
        log.info("refused unknown key %s on %s", redact_key(clear_key), request.path)
        return _reply(
            401,
            StatusCode.CONN_KEY_INVALID,
            "API key not found",
            f"key {redact_key(clear_key)} is not known here; check the key or create one",
        )
    if record.revoked:
        return _reply(
            401,
            StatusCode.CONN_KEY_INVALID,
            "API key not found",
            f"key {redact_key(clear_key)} (key id {record.key_id}) was revoked; use another key",
        )
    if "app_id" in request.match_info:
        user_id, app_id = request.match_info["user_id"], request.match_info["app_id"]
    elif record.app_id is not None:
        user_id, app_id = record.user_id, record.app_id
    else:
        return _reply(
            400,
            StatusCode.FAILURE,
            "App not named",
            f"key id {record.key_id} is for every app of user {record.user_id}: name the app in the path, "
            f"{INPUTS_PATH}",
        )
    request[APP_KEY] = (user_id, app_id)
    problem = record.access_problem(user_id, app_id, scope)
    if problem is not None:
        description = (
            f"Insufficient scopes: {scope} is required"
            if record.covers_app(user_id, app_id)
            else "API key is for another app"
        )
        return _reply(403, StatusCode.CONN_INSUFFICIENT_SCOPES, description, problem)
    if not request.app[STORE_KEY].app_exists(user_id, app_id):
        return _reply(
            404,
            StatusCode.FAILURE,
            "App not found",
            f"app {user_id}/{app_id} does not exist; create it (`destination app create {user_id} {app_id}`)",
        )
    return record


def _input_problem(raw: Any) -> str | None:
    """What is wrong with one posted input, or None when it can be stored."""
    if not isinstance(raw, dict):
        return 'each input must be an object {"id": ..., "data": {...}}'
    try:
        item = Input.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "input"
        return f"{where}: {first['msg']}"
    if "\x00" in item.id:  # refused on every backend: PostgreSQL's text cannot hold it
        return "id: contains a NUL character; remove it"
    image, text = item.data.image, item.data.text
    has_image = image is not None and bool(image.url or image.base64)
    has_text = text is not None and bool(text.raw or text.url)
    if not (has_image or has_text):
        return "data needs content: data.image.url, data.image.base64, data.text.raw or data.text.url"
    for url in (image.url if image else None, text.url if text else None):
        if url is not None and not url.startswith(("http://", "https://")):
            return f"url {url[:80]!r} must start with http:// or https://"
    if image is not None and image.base64:
        try:
            size = len(base64.b64decode(image.base64, validate=True))
        except (binascii.Error, ValueError):
            return "data.image.base64 is not valid base64"
        if size > MAX_IMAGE_BYTES:
            return f"the image is {size} bytes, over the {MAX_IMAGE_BYTES} bytes limit"
    return None


def _input_status(outcome: InsertOutcome, input_id: str, user_id: str, app_id: str) -> dict[str, Any]:
    if outcome is InsertOutcome.INSERTED:
        return _status(StatusCode.INPUT_SUCCESS, "Input successfully uploaded")
    return _status(
        StatusCode.INPUT_DUPLICATE,
        "Input already exists",
        f"an input with id {input_id!r} is already in app {user_id}/{app_id}; it was not stored again",
    )


async def _admitted(request: web.Request, scope: str, *, post: bool) -> web.Response | KeyRecord:
    """The injected fault's answer, if one is due; else the caller's key record if it may use ``scope`` on
    the path's app, or the refusal (:func:`_authorize`)."""
    fault = await _faults_gate(request, post=post)
    return fault if fault is not None else _authorize(request, scope)


async def post_inputs(request: web.Request) -> web.Response:
    """PostInputs: store up to 128 inputs, reporting each one's outcome."""
    state = request.app[STATE_KEY]
    auth = await _admitted(request, SCOPE_POST_INPUTS, post=True)
    if isinstance(auth, web.Response):
        return auth
    user_id, app_id = app_of(request)
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return _reply(400, StatusCode.FAILURE, "Invalid request body", f"the body is not valid JSON: {exc}")
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        return _reply(
            400,
            StatusCode.FAILURE,
            "Invalid request body",
            'send a JSON object {"inputs": [{"id": ..., "data": {...}}, ...]}',
        )
    raw_inputs: list[Any] = body["inputs"]
    if not raw_inputs:
        return _reply(400, StatusCode.FAILURE, "Invalid request body", "inputs is empty; send 1-128 inputs")
    state.batch_sizes[_batch_bucket(len(raw_inputs))] += 1
    if len(raw_inputs) > MAX_INPUTS_PER_REQUEST:
        return _reply(
            400,
            StatusCode.INPUT_OVER_LIMIT,
            "Too many inputs",
            f"{len(raw_inputs)} inputs sent; at most {MAX_INPUTS_PER_REQUEST} per request, split the batch",
        )
    resolution = body.get("input_id_conflict_resolution", "SKIP")
    if resolution != "SKIP":
        return _reply(
            400,
            StatusCode.FAILURE,
            "Invalid request body",
            f'input_id_conflict_resolution {resolution!r} is not supported here; use "SKIP" or omit it',
        )

    results: list[dict[str, Any]] = []
    valid: list[tuple[int, str, Mapping[str, Any]]] = []
    for index, raw in enumerate(raw_inputs):
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        input_id = raw_id if isinstance(raw_id, str) else ""
        problem = _input_problem(raw)
        if problem is None:
            valid.append((index, input_id, raw["data"]))
            results.append({"id": input_id, "status": {}})
        else:
            results.append(
                {
                    "id": input_id,
                    "status": _status(
                        StatusCode.INPUT_INVALID_ARGUMENT, "Invalid input argument", f"inputs[{index}]: {problem}"
                    ),
                }
            )
    outcomes = request.app[STORE_KEY].insert_inputs(user_id, app_id, [(i, d) for _, i, d in valid])
    for (index, input_id, _), outcome in zip(valid, outcomes, strict=True):
        results[index]["status"] = _input_status(outcome, input_id, user_id, app_id)

    stored = outcomes.count(InsertOutcome.INSERTED)
    duplicates = len(outcomes) - stored
    invalid = len(raw_inputs) - len(valid)
    state.inputs.update(stored=stored, duplicate=duplicates, invalid=invalid)
    if stored == len(raw_inputs):
        return _ok(inputs=results)
    if not valid:
        return _reply(
            400,
            StatusCode.FAILURE,
            "All inputs are invalid",
            "nothing was stored; see each input's status details",
            inputs=results,
        )
    return _reply(
        200,
        StatusCode.MIXED_STATUS,
        "Some inputs were not stored",
        f"{stored} stored, {duplicates} duplicate (already stored), {invalid} invalid",
        inputs=results,
    )


def _page_args(request: web.Request) -> tuple[int, int] | web.Response:
    try:
        page = int(request.query.get("page", "1"))
        per_page = int(request.query.get("per_page", str(MAX_INPUTS_PER_REQUEST)))
    except ValueError:
        page = per_page = 0
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        return _reply(
            400,
            StatusCode.FAILURE,
            "Invalid pagination",
            f"page must be an integer >= 1 and per_page an integer in 1..{MAX_PER_PAGE}",
        )
    return page, per_page


async def list_inputs(request: web.Request) -> web.Response:
    """ListInputs: one page of the app's inputs, in insertion order."""
    auth = await _admitted(request, SCOPE_LIST_INPUTS, post=False)
    if isinstance(auth, web.Response):
        return auth
    paging = _page_args(request)
    if isinstance(paging, web.Response):
        return paging
    page, per_page = paging
    user_id, app_id = app_of(request)
    stored = request.app[STORE_KEY].list_inputs(user_id, app_id, page, per_page)
    return _ok(inputs=[item.to_json() for item in stored])


async def get_input(request: web.Request) -> web.Response:
    """GetInput: one stored input by id."""
    auth = await _admitted(request, SCOPE_LIST_INPUTS, post=False)
    if isinstance(auth, web.Response):
        return auth
    (user_id, app_id), input_id = app_of(request), request.match_info["input_id"]
    item = request.app[STORE_KEY].get_input(user_id, app_id, input_id)
    if item is None:
        return _reply(
            404,
            StatusCode.INPUT_DOES_NOT_EXIST,
            "Input not found",
            f"no input with id {input_id!r} in app {user_id}/{app_id}",
        )
    return _ok(input=item.to_json())


SCOPE_ENDPOINTS = {
    SCOPE_POST_INPUTS: ("PostInputs",),
    SCOPE_LIST_INPUTS: ("ListInputs", "GetInput"),
    SCOPE_ALL: ("PostInputs", "ListInputs", "GetInput"),
}
MYSCOPES_PATHS = ("/v2/myscopes", "/v2/my_scopes", "/v2/users/{user_id}/apps/{app_id}/myscopes", "/v2/scopes")


async def my_scopes(request: web.Request) -> web.Response:
    """MyScopes, as Clarifai answers it: the key's ``scopes``, the ``endpoints`` they open and its ``app``
    (on the app path, that app, which the key must cover); also ``user_id``, ``app_id`` (null: every app of
    the user) and ``key_id``. ``me`` in the path is the key's user."""
    scheme, _, clear_key = request.headers.get("Authorization", "").partition(" ")
    clear_key = clear_key.strip()
    record = request.app[STORE_KEY].authenticate(clear_key) if scheme.lower() == "key" and clear_key else None
    if record is None:
        shown = redact_key(clear_key) if clear_key else "(none)"
        return _reply(
            401,
            StatusCode.CONN_KEY_INVALID,
            "API key not found",
            f"key {shown} is unknown or revoked; send the header 'Authorization: Key <your API key>'",
        )
    app = {"id": record.app_id or "", "user_id": record.user_id}
    if "app_id" in request.match_info:
        path_user = request.match_info["user_id"]
        user_id = record.user_id if path_user == "me" else path_user
        app = {"id": request.match_info["app_id"], "user_id": user_id}
        if not record.covers_app(user_id, app["id"]):
            problem = record.access_problem(user_id, app["id"], SCOPE_ALL)
            return _reply(403, StatusCode.CONN_INSUFFICIENT_SCOPES, "API key is for another app", problem or "")
        if not request.app[STORE_KEY].app_exists(user_id, app["id"]):
            return _reply(404, StatusCode.FAILURE, "App not found", f"app {user_id}/{app['id']} does not exist")
    calls = {"MyScopes", *(name for scope in record.scopes for name in SCOPE_ENDPOINTS.get(scope, ()))}
    return _ok(
        scopes=sorted(record.scopes),
        app=app,
        endpoints=[f"/clarifai.api.V2/{name}" for name in sorted(calls)],
        user_id=record.user_id,
        app_id=record.app_id,
        key_id=record.key_id,
    )


async def healthz(request: web.Request) -> web.Response:
    """Liveness: always 200 while the process serves."""
    return web.Response(body=orjson.dumps({"status": "ok"}), content_type="application/json")


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when the database answers a query, 503 otherwise."""
    try:
        request.app[STORE_KEY].user_exists("readiness-probe")  # on the loop, as every query of this service
    except Exception as exc:  # any failure of the database means not ready; the reason is in the answer
        return web.Response(
            status=503,
            body=orjson.dumps({"ready": False, "checks": {"database": False}, "details": type(exc).__name__}),
            content_type="application/json",
        )
    return web.Response(
        body=orjson.dumps({"ready": True, "checks": {"database": True}}), content_type="application/json"
    )


async def get_stats(request: web.Request) -> web.Response:
    """Counters of the inputs routes since start."""
    return web.Response(body=orjson.dumps(request.app[STATE_KEY].stats()), content_type="application/json")


async def get_faults(request: web.Request) -> web.Response:
    """The current fault config."""
    return web.Response(body=request.app[STATE_KEY].faults.model_dump_json(), content_type="application/json")


async def set_faults(request: web.Request) -> web.Response:
    """Replace the fault config with the posted one (omitted fields take their defaults)."""
    state = request.app[STATE_KEY]
    try:
        faults = FaultConfig.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        return _reply(
            400,
            StatusCode.FAILURE,
            "Invalid fault config",
            f"{problems}. Fields: down (bool), error_rate (0..1), error_status (429, 500, 502, 503, 504),"
            " delay_s (0..60), seed (int)",
        )
    if faults.seed is not None:
        state.rng.seed(faults.seed)
    state.faults = faults
    return web.Response(body=faults.model_dump_json(), content_type="application/json")


def create_app(store: BaseStore, *, faults: bool = False, rng: random.Random | None = None) -> web.Application:
    """The destination web app over `store`; `faults=True` mounts `/_faults` (off by default)."""
    app = web.Application(middlewares=[_count, _json_errors], client_max_size=MAX_BODY_BYTES)
    app[STORE_KEY] = store
    app[STATE_KEY] = ServerState(rng or random.Random())
    app.router.add_post(INPUTS_PATH, post_inputs, name="post_inputs")
    app.router.add_get(INPUTS_PATH, list_inputs, name="list_inputs")
    app.router.add_get(INPUTS_PATH + "/{input_id}", get_input, name="get_input")
    # Clarifai's bindings without the app: the app of the caller's key.
    app.router.add_post("/v2/inputs", post_inputs, name="post_inputs_of_key_app")
    app.router.add_get("/v2/inputs", list_inputs, name="list_inputs_of_key_app")
    app.router.add_get("/v2/inputs/{input_id}", get_input, name="get_input_of_key_app")
    for path in MYSCOPES_PATHS:
        app.router.add_get(path, my_scopes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/_stats", get_stats)
    if faults:
        app.router.add_get("/_faults", get_faults)
        app.router.add_post("/_faults", set_faults)
    return app


@asynccontextmanager
async def running(
    store: BaseStore, host: str = "127.0.0.1", port: int = 0, *, faults: bool = False
) -> AsyncIterator[str]:
    """Serve `store` on host:port (0 = an ephemeral port) while the block runs; yields the base URL."""
    async with serving(create_app(store, faults=faults), host, port) as url:
        yield url


GRPC_CALLS = ("PostInputs", "ListInputs", "GetInput", "MyScopes")


async def serve(
    store: BaseStore,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    faults: bool = False,
    stop: asyncio.Event,
    on_ready: Callable[[str], None] | None = None,
    grpc_port: int | None = None,
) -> None:
    """Serve until `stop` is set; `on_ready` gets the base URL once listening (and the gRPC port, when
    `grpc_port` serves PostInputs, ListInputs, GetInput and MyScopes over gRPC too)."""
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(running(store, host, port, faults=faults))
        if grpc_port is not None:
            bound = await stack.enter_async_context(bridged(url, GRPC_CALLS, host, grpc_port))
            url = f"{url} (gRPC on port {bound})"
        if on_ready is not None:
            on_ready(url)
        await stop.wait()
