"""The management API: PostCollectors, GetCollector, ListCollectors, PatchCollectors, DeleteCollectors (and the
same five calls for workflows) over HTTP, stored in the compacted control topic.

Every call is authorised by the destination service (MyScopes): the caller's key must belong to the user in
the path and cover the app. A write is validated whole (fields, references, workflow compilation, each
collector's post key at its destination) before anything is written; then the API waits until its control
reader has read the records back, so a read right after a write sees it. Keys are stored in the topic and
never returned: responses show ``destination.key`` redacted. Keys are sealed with the deployment's secret before
they are written (``streams/core/secrets.py``), destinations must be on the allow-list before anything is asked of
them, and bodies and request rates are bounded (``guard.py``). docs/API.md documents every call and code;
docs/SECURITY.md what is protected and how.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from enum import IntEnum
from typing import Any, Literal, TypeVar

import aiohttp
import orjson
from aiohttp import web
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from schemas.collectors import Collector, Workflow
from schemas.management import StoredCollector, StoredWorkflow, collector_key, workflow_key
from streams.core.allowlist import AllowedDestinations
from streams.core.clock import utc_now
from streams.core.routing import compile_collector
from streams.core.secrets import (
    KEY_REDACTION,
    SecretBox,
    Undecryptable,
    key_holders,
    load_box,
    opened_or_keyless,
    redact,
    redacted_document,
    resealed,
    same_key,
    seal_document,
)
from streams.core.workflows import WorkflowError, compile_nodes
from streams.kafka.control_topic import ControlReader, ControlWriter
from streams.kafka.probe import BrokerProbe
from streams.services.clarifai_grpc import bridged
from streams.services.destination.store import KeyRecord
from streams.services.management.auth import KeyIntrospection, KeyRefused, Unreachable, caller_problem, header_key
from streams.services.management.funnel import FunnelWatch, Watched
from streams.services.management.guard import CONN_THROTTLED, REQUEST_TOO_LARGE, Limits, guard_middleware
from streams.services.management.metrics import ApiMetrics, KeyCheck, note_key_check
from streams.services.management.observe import Observe
from streams.services.management.openapi import openapi_document
from streams.services.management.spelling import SpellingError, collector_view, project_fields

log = logging.getLogger(__name__)

APP_PATH = "/v2/users/{user_id}/apps/{app_id}"
DEFAULT_PER_PAGE = 128
MAX_PER_PAGE = 1000
MAX_ITEMS_PER_REQUEST = 128
WORKFLOW_REFERENCES = ("pre_queue_workflow_id", "post_queue_workflow_id")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Stored = TypeVar("Stored", StoredCollector, StoredWorkflow)


class ControlCode(IntEnum):
    """Status codes of the management API: each one a value of Clarifai's StatusCode enum (the name there in
    the comment where it differs), so Clarifai's clients can name every code."""

    SUCCESS = 10000
    FAILURE = 10020
    CONN_INSUFFICIENT_SCOPES = 11007
    CONN_KEY_INVALID = 11008
    CONN_KEY_NOT_FOUND = 11009
    INVALID_ARGUMENT = 11102  # CONN_INVALID_REQUEST
    NOT_FOUND = 11101  # CONN_DOES_NOT_EXIST: an app the auth service does not know
    WORKFLOW_INVALID = 22104  # WORKFLOW_INVALID_ARGUMENT
    WORKFLOW_NOT_FOUND = 22102  # WORKFLOW_DOES_NOT_EXIST
    WORKFLOW_ALREADY_EXISTS = 22100  # WORKFLOW_DUPLICATE
    IN_USE = 22999  # WORKFLOW_INVALID_REQUEST: a collector still uses the workflow
    ALREADY_EXISTS = 40010  # DATABASE_DUPLICATE_KEY: a collector id that exists
    UPSTREAM_UNREACHABLE = 40034  # EXTERNAL_CONNECTION_ERROR
    COLLECTOR_MISSING = 52000
    STORE_UNAVAILABLE = 98006  # INTERNAL_DATABASE_ISSUE: Kafka refused the write
    CONN_THROTTLED = CONN_THROTTLED  # a key over its request rate
    DESTINATION_NOT_ALLOWED = 30103  # INPUT_PERMISSION_DENIED: a destination outside the allow-list
    REQUEST_TOO_LARGE = REQUEST_TOO_LARGE  # RPC_MAX_MESSAGE_SIZE_EXCEEDED: a body over the limit


class Refusal(Exception):
    """A request refused as a whole; answered as ``{"status": {code, description, details}}``."""

    def __init__(self, http_status: int, code: ControlCode, description: str, details: str) -> None:
        super().__init__(details)
        self.http_status = http_status
        self.code = code
        self.description = description
        self.details = details


def _invalid(details: str) -> Refusal:
    return Refusal(400, ControlCode.INVALID_ARGUMENT, "Invalid argument", details)


def _reply(http_status: int, code: ControlCode, description: str, details: str = "", **extra: Any) -> web.Response:
    status: dict[str, Any] = {"code": int(code), "description": description}
    if details:
        status["details"] = details
    return web.Response(
        status=http_status, body=orjson.dumps({"status": status, **extra}), content_type="application/json"
    )


def _ok(**extra: Any) -> web.Response:
    return _reply(200, ControlCode.SUCCESS, "Ok", **extra)


# --- stored documents and their views ---------------------------------------------------------------------


def clear_document(stored: StoredCollector | StoredWorkflow) -> dict[str, Any]:
    """The stored model as JSON, a collector's key in clear (never written as it is: see :func:`seal_document`)."""
    document = stored.model_dump(mode="json")
    if isinstance(stored, StoredCollector) and stored.collector.destination.key is not None:
        document["collector"]["destination"]["key"] = stored.collector.destination.key.get_secret_value()
    return document


def workflow_view(stored: StoredWorkflow) -> dict[str, Any]:
    """A workflow as responses show it: its fields (model keys redacted) and timestamps."""
    view = redacted_document({"kind": "workflow", "workflow": stored.workflow.model_dump(mode="json")})
    return {**view["workflow"], "created_at": stored.created_at, "modified_at": stored.modified_at}


def _keep_model_keys(workflow: Workflow, previous: StoredWorkflow | None) -> Workflow:
    """A workflow sent back as responses show it keeps its model keys: a node whose key is the redacted form of
    the stored node's key (same place in the workflow) gets the stored key."""
    if previous is None:
        return workflow
    document = {"kind": "workflow", "workflow": workflow.model_dump(mode="json")}
    stored = {"kind": "workflow", "workflow": previous.workflow.model_dump(mode="json")}
    changed = False
    for node, old in zip(key_holders(document), key_holders(stored), strict=False):
        key, kept = node.get("key"), old.get("key")
        if isinstance(key, str) and isinstance(kept, str) and key != kept and key == redact(kept):
            node["key"], changed = kept, True
    return Workflow.model_validate(document["workflow"]) if changed else workflow


def _same_content(old: StoredCollector | StoredWorkflow, new: StoredCollector | StoredWorkflow) -> bool:
    """Whether an overwrite changes nothing but ``modified_at`` (then nothing is written); keys are compared in
    constant time (the JSON dumps show them masked)."""
    if (
        isinstance(old, StoredCollector)
        and isinstance(new, StoredCollector)
        and not same_key(_key_of(old.collector), _key_of(new.collector))
    ):
        return False
    return {**old.model_dump(mode="json"), "modified_at": ""} == {**new.model_dump(mode="json"), "modified_at": ""}


# --- the control topic as a store --------------------------------------------------------------------------


class Catalog:
    """Collectors and workflows of every app: read from a running :class:`ControlReader`, written through a
    :class:`ControlWriter`; writes of one app are serialised so checks and writes cannot interleave."""

    def __init__(self, bootstrap: str, topic: str, box: SecretBox, *, read_wait_s: float = 10.0) -> None:
        self.box = box
        self._writer = ControlWriter(bootstrap, topic)
        self._reader = ControlReader(bootstrap, topic, on_change=self._on_change)
        self._changed = asyncio.Event()
        self._locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._read_wait_s = read_wait_s

    async def start(self) -> None:
        """Start the writer and the reader; return once the topic has been read to its end."""
        await self._writer.start()
        await self._reader.start()
        await self._reader.ready.wait()

    async def stop(self) -> None:
        await self._reader.stop()
        await self._writer.stop()

    async def start_when_kafka_answers(self, retry_s: float = 2.0) -> None:
        """:meth:`start`, trying again every ``retry_s`` while Kafka does not answer (a service started before
        Kafka waits for it, not ready meanwhile)."""
        while True:
            try:
                await self.start()
                return
            except (KafkaError, ConnectionError) as exc:
                log.warning("Kafka does not answer (%s); trying again in %gs", exc, retry_s)
                await self.stop()
                await asyncio.sleep(retry_s)

    def ready(self) -> bool:
        """Whether the control topic has been read to its end."""
        return self._reader.ready.is_set()

    def lock(self, user_id: str, app_id: str) -> asyncio.Lock:
        """The lock that serialises writes to one app."""
        return self._locks[(user_id, app_id)]

    def collectors(self, user_id: str, app_id: str) -> dict[str, StoredCollector]:
        """The app's collectors by id, in id order."""
        return self._load(f"collector/{user_id}/{app_id}/", StoredCollector)

    def every_collector(self) -> dict[str, StoredCollector]:
        """Every app's collectors by qualified id (``user/app/collector``, as the workers' ledgers name them)."""
        return self._load("collector/", StoredCollector)

    def workflows(self, user_id: str, app_id: str) -> dict[str, StoredWorkflow]:
        """The app's workflows by id, in id order."""
        return self._load(f"workflow/{user_id}/{app_id}/", StoredWorkflow)

    def _load(self, prefix: str, model: type[Stored]) -> dict[str, Stored]:
        state = self._reader.state
        found: dict[str, Stored] = {}
        for key in sorted(k for k in state if k.startswith(prefix)):
            try:
                found[key.removeprefix(prefix)] = model.model_validate(self._opened(state[key]))
            except ValidationError as exc:  # logged without the rejected values: they may hold a key
                log.warning(
                    "control record %s is not a valid %s; ignored (%s)", key, model.__name__, _field_errors(exc, "")
                )
        return found

    def _opened(self, document: dict[str, Any]) -> dict[str, Any]:
        """A stored document with its key opened; keyless, with why as its last error, when no secret opens it."""
        opened, problem = opened_or_keyless(document, self.box)
        if problem is None or opened.get("kind") == "workflow":  # a workflow shows no error; its collectors do
            return opened
        return {**opened, "last_error": problem}

    def sealed(self, key: str) -> bool:
        """Whether the stored record under ``key`` needs no sealing (sealed with the newest secret, or keyless)."""
        document = self._reader.state.get(key)
        try:
            return document is None or resealed(document, self.box) is None
        except Undecryptable:
            return True  # only a new key can fix it

    async def write(self, records: Sequence[tuple[str, dict[str, Any] | None]]) -> None:
        """Write the records (None deletes; collectors' keys are sealed), then wait until the reader has read
        them back."""
        records = [(key, None if value is None else seal_document(value, self.box)) for key, value in records]
        try:
            for key, value in records:
                await self._writer.put(key, value)
        except KafkaError as exc:
            written = "; some records may have been written, repeat the call" if len(records) > 1 else ""
            raise Refusal(
                503,
                ControlCode.STORE_UNAVAILABLE,
                "Control store unavailable",
                f"Kafka refused the write ({type(exc).__name__}){written}",
            ) from None
        try:
            async with asyncio.timeout(self._read_wait_s):
                while True:
                    changed = self._changed
                    if all(self._reader.state.get(key) == value for key, value in records):
                        return
                    await changed.wait()
        except TimeoutError:
            log.warning("the control reader has not read back %d written records yet", len(records))

    def _on_change(self, _state: dict[str, dict[str, Any]]) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


CATALOG = web.AppKey("catalog", Catalog)
ALLOWED = web.AppKey("allowed", AllowedDestinations)
ALLOW_OPTION = "`collectors control serve --allowed-destination URL` (or COLLECTORS_ALLOWED_DESTINATIONS)"
KEYS = web.AppKey("keys", KeyIntrospection)
AUTH_URL = web.AppKey("auth_url", str)
DESTINATION_URL = web.AppKey("destination_url", str)
APP_IDS = web.RequestKey("user_app", tuple[str, str])  # set by _authorize
OPENAPI = web.AppKey("openapi", bytes)


# --- request parsing ---------------------------------------------------------------------------------------


def _path(request: web.Request) -> tuple[str, str]:
    """The request's app: the path's, else ``user_app_id``'s, else the key's own (set by :func:`_authorize`)."""
    return request[APP_IDS]


def _named_app(request: web.Request, body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The app the request names: in its path, or in ``user_app_id`` (the body's, or the query's
    ``user_app_id.user_id`` / ``user_app_id.app_id``); both must agree."""
    named = body.get("user_app_id")
    if named is None:
        named = {
            field: request.query[f"user_app_id.{field}"]
            for field in ("user_id", "app_id")
            if f"user_app_id.{field}" in request.query
        }
    if not isinstance(named, dict) or set(named) - {"user_id", "app_id"}:
        raise _invalid("user_app_id must be an object {user_id, app_id}")
    user_id, app_id = named.get("user_id") or None, named.get("app_id") or None
    if "app_id" in request.match_info:
        path = request.match_info["user_id"], request.match_info["app_id"]
        if (user_id not in (None, path[0])) or (app_id not in (None, path[1])):
            raise _invalid(f"user_app_id {user_id}/{app_id} is not the path's app {path[0]}/{path[1]}")
        return path
    return user_id, app_id


async def _authorize(request: web.Request) -> None:
    """Refuse unless the caller's key belongs to the request's user and covers its app (then set the app)."""
    clear_key = header_key(request.headers.get("Authorization", ""))
    if clear_key is None:
        note_key_check(request, "missing")
        raise Refusal(
            401,
            ControlCode.CONN_KEY_INVALID,
            "API key not found",
            "send the header 'Authorization: Key <key>' with a key of the app's owner",
        )
    body = await _body(request, keep_app=True) if request.method in ("POST", "PATCH", "DELETE") else {}
    user_id, app_id = _named_app(request, body)
    auth_url = request.app[AUTH_URL]
    keys = request.app[KEYS]
    try:
        if user_id in (None, "me") or app_id is None:
            own = _known(await keys.scopes(auth_url, clear_key), clear_key, auth_url)
            user_id = own.user_id if user_id in (None, "me") else user_id
            app_id = app_id or own.app_id
            if app_id is None:
                raise _invalid(
                    "name the app: user_app_id {user_id, app_id} in the body (or the query), or the path "
                    "/v2/users/{user_id}/apps/{app_id}/...; the key is not an app's"
                )
        record = _known(await keys.scopes(auth_url, clear_key, user_id, app_id), clear_key, auth_url)
    except Unreachable as exc:
        note_key_check(request, "unreachable")
        raise Refusal(502, ControlCode.UPSTREAM_UNREACHABLE, "Auth service unreachable", str(exc)) from None
    except Refusal as refusal:
        if refusal.http_status in KEY_REFUSALS:  # the auth service's answer about the key
            note_key_check(request, KEY_REFUSALS[refusal.http_status])
        raise
    KEY_REDACTION.remember(clear_key)
    problem = caller_problem(record, user_id, app_id)
    note_key_check(request, "ok" if problem is None else "other_app")
    if problem is not None:
        raise Refusal(403, ControlCode.CONN_INSUFFICIENT_SCOPES, "API key is for another app", problem)
    request[APP_IDS] = (user_id, app_id)


KEY_REFUSALS: dict[int, KeyCheck] = {401: "unknown", 403: "other_app", 404: "unknown_app"}
"""The key-check outcome of each refusal :func:`_known` makes."""


def _known(answer: KeyRecord | KeyRefused, clear_key: str, auth_url: str) -> KeyRecord:
    """The key's record, or the refusal the auth service's answer calls for."""
    if isinstance(answer, KeyRecord):
        return answer
    if answer.code == ControlCode.CONN_INSUFFICIENT_SCOPES:
        raise Refusal(403, ControlCode.CONN_INSUFFICIENT_SCOPES, "API key is for another app", answer.problem)
    if answer.code == ControlCode.NOT_FOUND:
        raise Refusal(404, ControlCode.NOT_FOUND, "App not found", answer.problem)
    raise Refusal(
        401,
        ControlCode.CONN_KEY_NOT_FOUND,
        "API key not found",
        f"key {redact(clear_key)} is unknown or revoked at {auth_url}; use a valid key of the app's owner",
    )


async def myscopes(request: web.Request) -> web.Response:
    """MyScopes: which user, app (id "" for a key of all the user's apps) and scopes the caller's key has."""
    clear_key = header_key(request.headers.get("Authorization", ""))
    if clear_key is None:
        raise Refusal(401, ControlCode.CONN_KEY_INVALID, "API key not found", "send 'Authorization: Key <key>'")
    auth_url = request.app[AUTH_URL]
    try:
        record = _known(await request.app[KEYS].scopes(auth_url, clear_key), clear_key, auth_url)
    except Unreachable as exc:
        raise Refusal(502, ControlCode.UPSTREAM_UNREACHABLE, "Auth service unreachable", str(exc)) from None
    return _ok(scopes=sorted(record.scopes), app={"id": record.app_id or "", "user_id": record.user_id})


async def _body(request: web.Request, *, keep_app: bool = False) -> dict[str, Any]:
    """The JSON object of the body (an empty body: ``{}``); ``user_app_id`` left out unless ``keep_app``."""
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    return body if keep_app else {key: value for key, value in body.items() if key != "user_app_id"}


def _field_errors(exc: ValidationError, where: str) -> str:
    """Pydantic errors as ``where.field[0].sub: message`` (never the rejected values: they may be keys)."""
    problems = []
    for error in exc.errors():
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
        problems.append(f"{where}{path}: {error['msg']}")
    return "; ".join(problems)


def _items(body: dict[str, Any], plural: str, *, overwrite: bool) -> list[Any]:
    """The list under ``plural`` of a POST or PATCH body (PATCH also takes ``"action": "overwrite"``)."""
    allowed = {plural, "action"} if overwrite else {plural}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _invalid(f"unknown body field(s) {', '.join(unknown)}; the body is {_body_shape(plural, overwrite)}")
    if overwrite and body.get("action") != "overwrite":
        raise _invalid(
            f'action {body.get("action")!r} is not supported: the only PATCH action is "overwrite" '
            f"(replace each {plural[:-1]} whole); send {_body_shape(plural, overwrite)}"
        )
    items = body.get(plural)
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS_PER_REQUEST:
        raise _invalid(
            f"{plural} must be a list of 1-{MAX_ITEMS_PER_REQUEST} objects; send {_body_shape(plural, overwrite)}"
        )
    return items


def _body_shape(plural: str, overwrite: bool) -> str:
    action = '"action": "overwrite", ' if overwrite else ""
    return f'{{{action}"{plural}": [{{...}}, ...]}}'


def _check_unique(plural: str, ids: Sequence[str]) -> None:
    seen: set[str] = set()
    for index, item_id in enumerate(ids):
        if item_id in seen:
            raise _invalid(f"{plural}[{index}].id: {item_id!r} appears twice in the request")
        seen.add(item_id)


def _check_presence(
    kind: str, ids: Iterable[str], existing: Iterable[str], user_id: str, app_id: str, *, overwrite: bool
) -> None:
    """POST: 409 if any id exists; PATCH: 404 if any id is missing."""
    known = set(existing)
    if overwrite:
        missing = [item_id for item_id in ids if item_id not in known]
        if missing:
            raise _not_found(kind, missing, user_id, app_id, hint="create them with POST (PATCH only overwrites)")
    else:
        taken = [item_id for item_id in ids if item_id in known]
        if taken:
            raise Refusal(
                409,
                ControlCode.ALREADY_EXISTS if kind == "collector" else ControlCode.WORKFLOW_ALREADY_EXISTS,
                f"{kind.capitalize()} already exists",
                f"{kind}(s) {', '.join(map(repr, taken))} already exist in app {user_id}/{app_id}; "
                'overwrite them with PATCH {"action": "overwrite", ...} or choose other ids',
            )


def _not_found(kind: str, ids: Sequence[str], user_id: str, app_id: str, *, hint: str) -> Refusal:
    return Refusal(
        404,
        ControlCode.COLLECTOR_MISSING if kind == "collector" else ControlCode.WORKFLOW_NOT_FOUND,
        f"{kind.capitalize()} not found",
        f"no {kind} {', '.join(map(repr, ids))} in app {user_id}/{app_id}; {hint}",
    )


def _parse_collector(
    raw: Any, where: str, user_id: str, app_id: str, kept_keys: dict[str, str], destination_url: str
) -> tuple[Collector, bool]:
    """Validate one collector of a body, in either spelling, its destination filled from the path (and
    ``destination_url`` when it names no base URL); also whether it gave a key.

    ``kept_keys`` (PATCH only) maps stored ids to their clear keys: a collector sent without a key, or with the
    redacted key responses show, keeps its own.
    """
    if not isinstance(raw, dict):
        raise _invalid(f"{where}: must be a collector object")
    try:
        raw = project_fields(raw, where, destination_url)
    except SpellingError as exc:
        raise _invalid(str(exc)) from None
    destination = raw.get("destination")
    kept = kept_keys.get(str(raw.get("id")))
    if isinstance(destination, dict) and kept is not None and destination.get("key") == redact(kept):
        destination = {**destination, "key": None}
    if isinstance(destination, dict):
        destination = {"user_id": user_id, "app_id": app_id, **destination}
        if destination.get("key_env") is not None:
            raise _invalid(
                f"{where}.destination.key_env: not accepted by the API, which cannot see the workers' environment; "
                "send the key itself in destination.key (it is stored, never shown back)"
            )
        destination.pop("key_env", None)
        key_given = destination.get("key") is not None
        if not key_given:
            if raw.get("id") not in kept_keys:
                raise _invalid(
                    f"{where}.destination.key: required, an API key of the app with the PostInputs scope (or "
                    "collector_source.api_post_model_outputs_collector_source.post_inputs_key_id)"
                )
            destination["key"] = kept_keys[raw["id"]]
        raw = {**raw, "destination": destination}
    else:
        key_given = False
    try:
        collector = Collector.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(_field_errors(exc, where)) from None
    for field, wanted in (("user_id", user_id), ("app_id", app_id)):
        given = getattr(collector.destination, field)
        if given != wanted:
            raise _invalid(
                f"{where}.destination.{field}: {given!r} is not the path's {wanted!r}; a collector collects into "
                f"the app it belongs to: omit the field, or manage it under that app's path"
            )
    return collector, key_given


def _check_workflows(
    collector: Collector, where: str, workflows: dict[str, Workflow], user_id: str, app_id: str
) -> None:
    """The collector's workflow references exist in the app, and the collector compiles with them."""
    for field in WORKFLOW_REFERENCES:
        workflow_id = getattr(collector, field)
        if workflow_id is not None and workflow_id not in workflows:
            raise _invalid(
                f"{where}.{field}: workflow {workflow_id!r} does not exist in app {user_id}/{app_id}; "
                f"create it first (POST {APP_PATH.format(user_id=user_id, app_id=app_id)}/workflows)"
            )
    _compile(collector, workflows, where)


def _compile(collector: Collector, workflows: dict[str, Workflow], where: str) -> None:
    try:
        compile_collector(collector, workflows, _key_of(collector))
    except WorkflowError as exc:
        raise Refusal(400, ControlCode.WORKFLOW_INVALID, "Invalid workflow", f"{where}: {exc}") from None


_NO_COLLECTOR = "-"


def _workflow_problem(workflow: Workflow) -> str | None:
    """Why a workflow can run neither as a pre-queue nor as a post-queue workflow, or None."""
    messages: list[str] = []
    stages: tuple[Literal["pre", "post"], ...] = ("pre", "post")
    for stage in stages:
        try:
            compile_nodes(workflow.nodes, stage=stage, collector_id=_NO_COLLECTOR, workflow_id=workflow.id)
        except WorkflowError as exc:
            messages.append(str(exc).replace(f"collector {_NO_COLLECTOR!r}, ", ""))
        else:
            return None
    pre, post = messages
    return pre if pre == post else f"as a pre-queue workflow: {pre}; as a post-queue workflow: {post}"


def _nodes(nodes: Sequence[Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every node object with its field path, the nodes of ``any`` included, in document order."""
    for index, node in enumerate(nodes):
        if not isinstance(node, dict):
            continue
        here = f"{where}.nodes[{index}]"
        yield here, node
        if node.get("operator") == "any" and isinstance(node.get("nodes"), list):
            yield from _nodes(node["nodes"], here)


def _host_access(nodes: Sequence[Any], where: str) -> str | None:
    """Why nodes would make the API host run code or read files a caller names, or None.

    A ``python`` operator imports a module and a ``concept_map`` with a ``graph`` path reads a file, on the
    API host and on every worker: through the API only self-contained nodes are accepted. Both stay
    available in a worker's static configuration file, which is the deployment's own.
    """
    for here, node in _nodes(nodes, where):
        if node.get("operator") == "python":
            return f"{here}: `python` operators are not accepted through the API; configure them in a worker's file"
        if node.get("operator") == "concept_map" and isinstance(node.get("graph"), str):
            return f"{here}.graph: give the knowledge graph inline (a list of relations), not a file path"
    return None


def _check_model_urls(request: web.Request, raw_items: Sequence[Any]) -> None:
    """Workers call a model node's URL: like a destination, it must be on the allow-list (a gRPC target
    ``host:port`` is checked as ``http://host:port``)."""
    allowed = request.app[ALLOWED]
    for index, raw in enumerate(raw_items):
        for here, node in _nodes(raw.get("nodes") or [], f"workflows[{index}]"):
            url = node.get("url")
            if node.get("operator") != "model" or not isinstance(url, str):
                continue
            where = f"{here}.url"
            problem = allowed.problem(url if "://" in url else f"http://{url}")
            if problem is not None:
                raise Refusal(
                    403,
                    ControlCode.DESTINATION_NOT_ALLOWED,
                    "Model not allowed",
                    f"{where}: {problem.replace('destination', 'model', 1)}",
                )


def _parse_workflow(raw: Any, where: str) -> Workflow:
    if not isinstance(raw, dict):
        raise _invalid(f"{where}: must be a workflow object")
    try:
        workflow = Workflow.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(_field_errors(exc, where)) from None
    refused = _host_access(raw.get("nodes") or [], where)
    if refused is not None:
        raise _invalid(refused)
    problem = _workflow_problem(workflow)
    if problem is not None:
        raise Refusal(400, ControlCode.WORKFLOW_INVALID, "Invalid workflow", f"{where}: {problem}")
    return workflow


def _check_destinations(request: web.Request, collectors: Sequence[Collector]) -> None:
    """Every collector's destination is on the allow-list: nothing is asked of any other address."""
    allowed = request.app[ALLOWED]
    for index, collector in enumerate(collectors):
        KEY_REDACTION.remember(_key_of(collector))
        problem = allowed.problem(collector.destination.base_url)
        if problem is not None:
            raise Refusal(
                403,
                ControlCode.DESTINATION_NOT_ALLOWED,
                "Destination not allowed",
                f"collectors[{index}].destination.base_url: {problem}; nothing was stored",
            )


def _key_of(collector: Collector) -> str:
    """The collector's clear key (every collector the API accepts has one)."""
    return collector.destination.key.get_secret_value() if collector.destination.key is not None else ""


async def _check_post_keys(request: web.Request, checks: Sequence[tuple[str, Collector]]) -> None:
    """Each collector's key must post inputs into its app (asked once per distinct destination and key)."""
    distinct = {(c.destination.base_url, _key_of(c)): c.destination for _, c in checks}
    try:
        answers = await asyncio.gather(*(request.app[KEYS].post_key_problem(d) for d in distinct.values()))
    except Unreachable as exc:
        raise Refusal(
            502,
            ControlCode.UPSTREAM_UNREACHABLE,
            "Destination unreachable",
            f"cannot check a collector's key: {exc}; check destination.base_url (nothing was stored)",
        ) from None
    problems = dict(zip(distinct, answers, strict=True))
    for where, collector in checks:
        problem = problems[(collector.destination.base_url, _key_of(collector))]
        if problem is not None:
            destination = collector.destination
            raise Refusal(
                403,
                ControlCode.CONN_INSUFFICIENT_SCOPES,
                "Insufficient scopes: the collector's key cannot post inputs",
                f"{where}.destination.key: {problem}; give a key of app {destination.user_id}/{destination.app_id}"
                " with the PostInputs scope (nothing was stored)",
            )


def _raw_ids(raw_items: Sequence[Any]) -> list[str]:
    """The string ids of a body's items (the others are refused when the items are validated)."""
    return [raw["id"] for raw in raw_items if isinstance(raw, dict) and isinstance(raw.get("id"), str)]


class DeleteRequest(BaseModel):
    """The body of DeleteCollectors / DeleteWorkflows: ``{"ids": [...]}`` or ``{"delete_all": true}``."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = None
    delete_all: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> DeleteRequest:
        if bool(self.ids) == self.delete_all:
            raise ValueError('send either {"ids": ["id", ...]} (not empty) or {"delete_all": true}')
        return self


def _page(request: web.Request) -> tuple[int, int]:
    try:
        page = int(request.query.get("page", "1"))
        per_page = int(request.query.get("per_page", str(DEFAULT_PER_PAGE)))
    except ValueError:
        page = per_page = 0
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise _invalid(f"page must be an integer >= 1 and per_page an integer in 1..{MAX_PER_PAGE}")
    return page, per_page


# --- handlers ----------------------------------------------------------------------------------------------


async def post_collectors(request: web.Request) -> web.Response:
    """PostCollectors: create collectors (409 if an id exists)."""
    return await _write_collectors(request, overwrite=False)


async def patch_collectors(request: web.Request) -> web.Response:
    """PatchCollectors: overwrite existing collectors (404 if an id is missing)."""
    return await _write_collectors(request, overwrite=True)


async def _write_collectors(request: web.Request, *, overwrite: bool) -> web.Response:
    await _authorize(request)
    user_id, app_id = _path(request)
    raw_items = _items(await _body(request), "collectors", overwrite=overwrite)
    catalog = request.app[CATALOG]
    async with catalog.lock(user_id, app_id):
        existing = catalog.collectors(user_id, app_id)
        _check_presence("collector", _raw_ids(raw_items), existing, user_id, app_id, overwrite=overwrite)
        kept_keys = {cid: _key_of(stored.collector) for cid, stored in existing.items() if _key_of(stored.collector)}
        if not overwrite:
            kept_keys = {}
        parsed = [
            _parse_collector(raw, f"collectors[{index}]", user_id, app_id, kept_keys, request.app[DESTINATION_URL])
            for index, raw in enumerate(raw_items)
        ]
        _check_unique("collectors", [collector.id for collector, _ in parsed])
        _check_destinations(request, [collector for collector, _ in parsed])
        workflows = {wid: stored.workflow for wid, stored in catalog.workflows(user_id, app_id).items()}
        checks: list[tuple[str, Collector]] = []
        for index, (collector, key_given) in enumerate(parsed):
            _check_workflows(collector, f"collectors[{index}]", workflows, user_id, app_id)
            previous = existing.get(collector.id)
            resumed = collector.status == "active" and (previous is None or previous.collector.status == "paused")
            if key_given or resumed:
                checks.append((f"collectors[{index}]", collector))
        await _check_post_keys(request, checks)
        checked = {collector.id for _, collector in checks}
        now = utc_now()
        result: list[StoredCollector] = []
        records: list[tuple[str, dict[str, Any] | None]] = []
        for collector, _ in parsed:
            previous = existing.get(collector.id)
            stored = StoredCollector(
                user_id=user_id,
                app_id=app_id,
                collector=collector,
                created_at=previous.created_at if previous else now,
                modified_at=now,
                last_error=previous.last_error if previous and collector.id not in checked else None,
            )
            record_key = collector_key(user_id, app_id, collector.id)
            if previous is not None and _same_content(previous, stored) and catalog.sealed(record_key):
                stored = previous
            else:
                records.append((record_key, clear_document(stored)))
            result.append(stored)
        await catalog.write(records)
    return _ok(collectors=[collector_view(stored) for stored in result])


async def post_workflows(request: web.Request) -> web.Response:
    """PostWorkflows: create workflows (409 if an id exists)."""
    return await _write_workflows(request, overwrite=False)


async def patch_workflows(request: web.Request) -> web.Response:
    """PatchWorkflows: overwrite existing workflows; the collectors using them must still compile."""
    return await _write_workflows(request, overwrite=True)


async def _write_workflows(request: web.Request, *, overwrite: bool) -> web.Response:
    await _authorize(request)
    user_id, app_id = _path(request)
    raw_items = _items(await _body(request), "workflows", overwrite=overwrite)
    catalog = request.app[CATALOG]
    async with catalog.lock(user_id, app_id):
        existing = catalog.workflows(user_id, app_id)
        _check_presence("workflow", _raw_ids(raw_items), existing, user_id, app_id, overwrite=overwrite)
        parsed = [
            _keep_model_keys(_parse_workflow(raw, f"workflows[{index}]"), existing.get(str(raw.get("id"))))
            for index, raw in enumerate(raw_items)
        ]
        _check_unique("workflows", [workflow.id for workflow in parsed])
        _check_model_urls(request, raw_items)
        for workflow in parsed:
            for node in key_holders({"kind": "workflow", "workflow": workflow.model_dump(mode="json")}):
                if isinstance(node.get("key"), str):
                    KEY_REDACTION.remember(node["key"])
        if overwrite:
            merged = {wid: stored.workflow for wid, stored in existing.items()} | {w.id: w for w in parsed}
            for cid, user in _users_of(catalog.collectors(user_id, app_id), {w.id for w in parsed}).items():
                _compile(user.collector, merged, f"collector {cid!r}, which uses workflow(s) being overwritten")
        now = utc_now()
        result: list[StoredWorkflow] = []
        records: list[tuple[str, dict[str, Any] | None]] = []
        for workflow in parsed:
            previous = existing.get(workflow.id)
            stored = StoredWorkflow(
                user_id=user_id,
                app_id=app_id,
                workflow=workflow,
                created_at=previous.created_at if previous else now,
                modified_at=now,
            )
            if previous is not None and _same_content(previous, stored):
                stored = previous
            else:
                records.append((workflow_key(user_id, app_id, workflow.id), clear_document(stored)))
            result.append(stored)
        await catalog.write(records)
    return _ok(workflows=[workflow_view(stored) for stored in result])


def _users_of(collectors: dict[str, StoredCollector], workflow_ids: set[str]) -> dict[str, StoredCollector]:
    """The collectors that refer to any of ``workflow_ids``."""
    return {
        cid: stored
        for cid, stored in collectors.items()
        if workflow_ids.intersection(getattr(stored.collector, field) for field in WORKFLOW_REFERENCES)
    }


def _views(catalog: Catalog, plural: str, user_id: str, app_id: str) -> dict[str, dict[str, Any]]:
    if plural == "collectors":
        return {cid: collector_view(stored) for cid, stored in catalog.collectors(user_id, app_id).items()}
    return {wid: workflow_view(stored) for wid, stored in catalog.workflows(user_id, app_id).items()}


def _get_handler(plural: str) -> Handler:
    async def get_item(request: web.Request) -> web.Response:
        await _authorize(request)
        user_id, app_id = _path(request)
        item_id = request.match_info["item_id"]
        view = _views(request.app[CATALOG], plural, user_id, app_id).get(item_id)
        if view is None:
            raise _not_found(plural[:-1], [item_id], user_id, app_id, hint=f"list them with GET .../{plural}")
        return _ok(**{plural[:-1]: view})

    get_item.__doc__ = f"Get{plural[:-1].capitalize()}: one {plural[:-1]} by id."
    return get_item


def _list_handler(plural: str) -> Handler:
    async def list_items(request: web.Request) -> web.Response:
        await _authorize(request)
        user_id, app_id = _path(request)
        page, per_page = _page(request)
        views = list(_views(request.app[CATALOG], plural, user_id, app_id).values())
        return _ok(**{plural: views[(page - 1) * per_page : page * per_page]})

    list_items.__doc__ = f"List{plural.capitalize()}: one page of the app's {plural}, in id order."
    return list_items


def _delete_handler(plural: str) -> Handler:
    async def delete_items(request: web.Request) -> web.Response:
        await _authorize(request)
        user_id, app_id = _path(request)
        try:
            wanted = DeleteRequest.model_validate(await _body(request))
        except ValidationError as exc:
            raise _invalid(_field_errors(exc, "body")) from None
        catalog = request.app[CATALOG]
        kind = plural[:-1]
        async with catalog.lock(user_id, app_id):
            existing = _views(catalog, plural, user_id, app_id)
            ids = list(existing) if wanted.delete_all else list(dict.fromkeys(wanted.ids or ()))
            missing = [item_id for item_id in ids if item_id not in existing]
            if missing:
                raise _not_found(kind, missing, user_id, app_id, hint="nothing was deleted")
            if plural == "workflows":
                users = _users_of(catalog.collectors(user_id, app_id), set(ids))
                if users:
                    raise Refusal(
                        409,
                        ControlCode.IN_USE,
                        "Workflow in use",
                        f"collector(s) {', '.join(map(repr, users))} use these workflows; delete them or overwrite "
                        "them without these workflows first (nothing was deleted)",
                    )
            key = collector_key if plural == "collectors" else workflow_key
            await catalog.write([(key(user_id, app_id, item_id), None) for item_id in ids])
        return _ok(deleted=ids)

    delete_items.__doc__ = f"Delete{plural.capitalize()}: the given ids, or all of the app's {plural}."
    return delete_items


async def healthz(request: web.Request) -> web.Response:
    """Liveness: 200 while the process serves (it serves once the control topic has been read)."""
    return web.Response(body=orjson.dumps({"status": "ok"}), content_type="application/json")


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this API."""
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals, aiohttp's own errors (unknown route, wrong method, body too large) and crashes as JSON."""
    try:
        return await handler(request)
    except Refusal as exc:
        log.info("%s %s refused: %d %s", request.method, request.path, exc.code, exc.details)
        return _reply(exc.http_status, exc.code, exc.description, exc.details)
    except web.HTTPRequestEntityTooLarge:
        raise  # answered by the guard, which knows the limit
    except web.HTTPException as exc:
        if exc.status == 404:
            details = f"no route {request.method} {request.path}; see GET /openapi.json"
        elif exc.status == 405:
            details = f"{request.method} is not allowed on {request.path}; see GET /openapi.json"
        else:
            details = exc.text or ""
        return _reply(exc.status, ControlCode.FAILURE, exc.reason, details)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _reply(500, ControlCode.FAILURE, "Internal error", "the server failed; see its log")


def create_app(
    catalog: Catalog,
    keys: KeyIntrospection,
    auth_url: str,
    destination_url: str | None = None,
    *,
    watched: Watched | None = None,
    probe: BrokerProbe | None = None,
    allowed: AllowedDestinations | None = None,
    limits: Limits | None = None,
) -> web.Application:
    """The management web app over a catalog; keys are checked with ``auth_url``'s MyScopes, and a collector
    naming no destination base URL posts to ``destination_url`` (default: ``auth_url``). Calls are answered
    once the catalog has read the control topic (the probes at once); ``watched`` names the workers whose
    funnels the page shows, ``probe`` the broker ``/readyz`` asks. Collectors may name the destinations
    ``allowed`` (default: ``auth_url`` and ``destination_url``); bodies and each key's rate are bounded by
    ``limits``."""
    metrics = ApiMetrics()
    watch = None if watched is None else FunnelWatch(watched, catalog.every_collector)
    observe = Observe(
        metrics=metrics, probe=probe, ready=catalog.ready, keys=keys, auth_url=auth_url.rstrip("/"), watch=watch
    )
    limits = limits or Limits()
    app = web.Application(
        middlewares=[metrics.middleware(), guard_middleware(limits), observe.until_ready, _errors],
        client_max_size=limits.max_body_bytes,
    )
    app[ALLOWED] = allowed or AllowedDestinations([auth_url, destination_url or auth_url], option=ALLOW_OPTION)
    app[CATALOG] = catalog
    app[KEYS] = keys
    app[AUTH_URL] = auth_url.rstrip("/")
    app[DESTINATION_URL] = (destination_url or auth_url).rstrip("/")
    app[OPENAPI] = orjson.dumps(openapi_document({code.name: int(code) for code in ControlCode}))
    for plural, post, patch in (
        ("collectors", post_collectors, patch_collectors),
        ("workflows", post_workflows, patch_workflows),
    ):
        base = f"{APP_PATH}/{plural}"
        app.router.add_post(base, post, name=f"post_{plural}")
        app.router.add_get(base, _list_handler(plural), name=f"list_{plural}")
        app.router.add_patch(base, patch, name=f"patch_{plural}")
        app.router.add_delete(base, _delete_handler(plural), name=f"delete_{plural}")
        app.router.add_get(base + "/{item_id}", _get_handler(plural), name=f"get_{plural[:-1]}")
    app.router.add_get("/v2/myscopes", myscopes, name="get_myscopes")
    # Clarifai's bindings without the app in the path: the app is user_app_id's, or the key's own.
    app.router.add_post("/v2/collectors", post_collectors)
    app.router.add_get("/v2/collectors", _list_handler("collectors"))
    app.router.add_patch("/v2/collectors", patch_collectors)
    app.router.add_delete("/v2/collectors", _delete_handler("collectors"))
    app.router.add_get("/v2/collectors/{item_id}", _get_handler("collectors"))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi)
    observe.install(app)
    return app


@asynccontextmanager
async def running(
    broker: str,
    topic: str,
    auth_url: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    timeout_s: float = 10.0,
    access_log: bool = False,
    destination_url: str | None = None,
    watched: Watched | None = None,
    box: SecretBox | None = None,
    allowed_destinations: Sequence[str] = (),
    limits: Limits | None = None,
) -> AsyncIterator[str]:
    """Serve the API on host:port (0 = an ephemeral port) while the block runs; yields the base URL.

    The API listens at once (``/readyz`` answers 503 until ready), and answers calls once the control topic
    has been read to its end, before the block runs; outgoing calls (MyScopes) time out after ``timeout_s``.
    Keys are sealed with ``box`` (default: the secrets of the environment, ``SecretError`` when there are
    none); collectors may name ``allowed_destinations`` (default: ``auth_url`` and ``destination_url``).
    """
    box = box or load_box()
    default = [auth_url, destination_url or auth_url]
    allowed = AllowedDestinations(allowed_destinations or default, option=ALLOW_OPTION)
    catalog = Catalog(broker, topic, box)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
    app = create_app(
        catalog,
        KeyIntrospection(session),
        auth_url,
        destination_url,
        watched=watched,
        probe=BrokerProbe(broker),
        allowed=allowed,
        limits=limits,
    )
    runner = web.AppRunner(app, access_log=log if access_log else None)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        await catalog.start_when_kafka_answers()
        log.info("control topic %s read: %d collectors", topic, len(catalog.every_collector()))
        bound_host, bound_port = runner.addresses[0][:2]
        yield f"http://[{bound_host}]:{bound_port}" if ":" in bound_host else f"http://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()
        await session.close()
        await catalog.stop()


COLLECTOR_CALLS = ("PostCollectors", "GetCollector", "ListCollectors", "PatchCollectors", "DeleteCollectors")


async def serve(
    broker: str,
    topic: str,
    auth_url: str,
    host: str,
    port: int,
    *,
    stop: asyncio.Event,
    timeout_s: float = 10.0,
    on_ready: Callable[[str], None] | None = None,
    destination_url: str | None = None,
    grpc_port: int | None = None,
    watched: Watched | None = None,
    box: SecretBox | None = None,
    allowed_destinations: Sequence[str] = (),
    limits: Limits | None = None,
) -> None:
    """Serve until ``stop`` is set; ``on_ready`` gets the base URL once listening (and the gRPC port, when
    ``grpc_port`` serves Clarifai's five Collector calls over gRPC too); ``watched``: the workers the funnel
    page shows."""
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(
            running(
                broker,
                topic,
                auth_url,
                host,
                port,
                timeout_s=timeout_s,
                access_log=True,
                destination_url=destination_url,
                watched=watched,
                box=box,
                allowed_destinations=allowed_destinations,
                limits=limits,
            )
        )
        if grpc_port is not None:
            bound = await stack.enter_async_context(bridged(url, COLLECTOR_CALLS, host, grpc_port))
            url = f"{url} (gRPC on port {bound})"
        if on_ready is not None:
            on_ready(url)
        await stop.wait()
