"""A collector as Clarifai spells it and as this project spells it: one model, two spellings.

Clarifai's Collector names its model in ``collector_source.api_post_model_outputs_collector_source`` (with the
PostInputs key in ``post_inputs_key_id``), its status as a Status message (52001 COLLECTOR_ACTIVE, 52002
COLLECTOR_INACTIVE, 52003 COLLECTOR_POST_INPUT_FAILED) and its destination as the app it belongs to. The
project names them ``source``, ``status: active|paused`` and ``destination``. Requests may use either, field by
field; responses carry Clarifai's fields, with the project's ``destination``, ``modified_at`` and ``last_error``
as extra fields Clarifai's client ignores.
"""

from __future__ import annotations

from typing import Any

from schemas.management import StoredCollector
from streams.core.secrets import redact

COLLECTOR_MISSING = 52000
COLLECTOR_ACTIVE = 52001
COLLECTOR_INACTIVE = 52002
COLLECTOR_POST_INPUT_FAILED = 52003
STATUS_BY_NAME = {
    "COLLECTOR_MISSING": COLLECTOR_MISSING,
    "COLLECTOR_ACTIVE": COLLECTOR_ACTIVE,
    "COLLECTOR_INACTIVE": COLLECTOR_INACTIVE,
    "COLLECTOR_POST_INPUT_FAILED": COLLECTOR_POST_INPUT_FAILED,
}
SOURCE_FIELDS = ("model_user_id", "model_app_id", "model_id", "model_version_id", "caller_user_id")
CLARIFAI_SOURCE = "api_post_model_outputs_collector_source"


class SpellingError(ValueError):
    """A field spelled Clarifai's way that cannot be read; the message names the field."""


def project_fields(raw: dict[str, Any], where: str, destination_url: str) -> dict[str, Any]:
    """``raw`` with Clarifai's fields turned into the project's (``created_at``, which the server assigns,
    dropped); the project's own fields pass unchanged. A destination without ``base_url`` gets
    ``destination_url``."""
    collector = {key: value for key, value in raw.items() if key not in ("collector_source", "created_at")}
    destination = raw.get("destination", {})
    if not isinstance(destination, dict):
        return collector  # refused with the field's name when the collector is validated
    destination = {"base_url": destination_url, **destination}
    if "collector_source" in raw:
        if "source" in raw:
            raise SpellingError(f"{where}: give the model in source or in collector_source, not both")
        source, key = _source(raw["collector_source"], f"{where}.collector_source.{CLARIFAI_SOURCE}")
        collector["source"] = source
        if key:
            given = destination.get("key")
            if given is not None and given != key:
                raise SpellingError(
                    f"{where}: destination.key and collector_source.{CLARIFAI_SOURCE}.post_inputs_key_id differ;"
                    " give the key once"
                )
            destination["key"] = key
    if isinstance(raw.get("status"), dict):
        collector["status"] = _status(raw["status"], f"{where}.status")
    collector["destination"] = destination
    return collector


def _source(raw: Any, where: str) -> tuple[dict[str, Any], str | None]:
    """The project's source and the post key of Clarifai's collector_source."""
    outer = raw if isinstance(raw, dict) else None
    inner = outer.get(CLARIFAI_SOURCE) if outer is not None and set(outer) <= {CLARIFAI_SOURCE} else None
    if not isinstance(inner, dict):
        raise SpellingError(f"{where}: must be an object {{model_user_id, model_app_id, model_id, ...}}")
    unknown = sorted(set(inner) - {*SOURCE_FIELDS, "post_inputs_key_id"})
    if unknown:
        raise SpellingError(f"{where}: unknown field(s) {', '.join(unknown)}")
    source = {field: inner[field] for field in SOURCE_FIELDS if inner.get(field) not in (None, "")}
    key = inner.get("post_inputs_key_id")
    if key is not None and not isinstance(key, str):
        raise SpellingError(f"{where}.post_inputs_key_id: must be a string (the API key that posts the inputs)")
    return source, key or None


def _status(raw: dict[str, Any], where: str) -> str:
    """``active`` or ``paused`` from a Status message (code by number or by name; no code: active)."""
    code = raw.get("code", COLLECTOR_ACTIVE)
    code = STATUS_BY_NAME.get(code, code) if isinstance(code, str) else code
    if code == COLLECTOR_ACTIVE:
        return "active"
    if code in (COLLECTOR_INACTIVE, COLLECTOR_POST_INPUT_FAILED):
        return "paused"
    raise SpellingError(
        f"{where}.code: {raw.get('code')!r} is not a collector status; "
        f"send {COLLECTOR_ACTIVE} (COLLECTOR_ACTIVE) or {COLLECTOR_INACTIVE} (COLLECTOR_INACTIVE)"
    )


def status_message(stored: StoredCollector) -> dict[str, Any]:
    """The collector's status as a Status message."""
    if stored.collector.status == "active":
        return {"code": COLLECTOR_ACTIVE, "description": "Collector is active"}
    if stored.last_error:
        return {
            "code": COLLECTOR_POST_INPUT_FAILED,
            "description": "Collector paused: posting inputs failed",
            "details": stored.last_error,
        }
    return {"code": COLLECTOR_INACTIVE, "description": "Collector is paused"}


def collector_view(stored: StoredCollector) -> dict[str, Any]:
    """A collector as responses show it: Clarifai's fields (keys redacted), then the project's extras."""
    collector = stored.collector
    key = collector.destination.key
    shown_key = None if key is None else redact(key.get_secret_value())
    source = {field: value for field, value in collector.source.model_dump().items() if value is not None}
    view = collector.model_dump(mode="json", exclude={"source", "status", "destination"})
    destination = collector.destination.model_dump(mode="json")
    return {
        **view,
        "created_at": stored.created_at,
        "collector_source": {CLARIFAI_SOURCE: {**source, "post_inputs_key_id": shown_key}},
        "status": status_message(stored),
        "destination": {**destination, "key": shown_key},
        "modified_at": stored.modified_at,
        "last_error": stored.last_error,
    }
