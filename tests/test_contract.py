"""The event contract: good events pass, bad ones fail with a reason that says what is wrong."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import PredictionEvent
from schemas.export import JSON_DIR, SCHEMA_FILES, json_schema
from streams.core.decoding import DecodeError, decode_event
from streams.tools.samples.generate import events

GOOD: dict[str, Any] = {
    "id": "evt-000001",
    "created_at": "2026-11-27T10:00:00Z",
    "caller": {"user_id": "bob"},
    "output": {
        "model": {
            "id": "general-image-recognition",
            "user_id": "clarifai",
            "app_id": "main",
            "model_version": {"id": "aa7f35c01e0642fda5cf400f543e7c40"},
        },
        "input": {"id": "in-1", "data": {"image": {"url": "https://example.com/1.jpg"}, "metadata": {"camera": "x"}}},
        "data": {"concepts": [{"id": "ai_dog", "name": "dog", "value": 0.93}]},
    },
}


def _with(path: str, value: Any) -> bytes:
    event = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node = event
    for part in parents:
        node = node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return orjson.dumps(event)


def test_issue_example_decodes_and_validates_with_pydantic_too() -> None:
    decoded = decode_event(orjson.dumps(GOOD))
    assert decoded == GOOD
    assert PredictionEvent.model_validate(decoded).output.data.concepts[0].value == 0.93


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("output.input.data", {"text": {"raw": "hello"}}),
        ("output.input.data", {"image": {"base64": "aGVsbG8="}}),
        ("output.data", {"regions": [{"data": {"concepts": [{"id": "c", "value": 0.1}]}}]}),
        ("output.data", {}),
        ("caller", KeyError),
        ("created_at", KeyError),
        ("output.model.model_version", KeyError),
        ("extra_field", {"kept": True}),
    ],
)
def test_good_variants(path: str, value: Any) -> None:
    decoded = decode_event(_with(path, value))
    if path == "extra_field":
        assert decoded["extra_field"] == {"kept": True}, "unknown fields are kept"


@pytest.mark.parametrize(
    ("raw", "reason", "fragment"),
    [
        (b"{", "invalid_json", ""),
        (b"\xff\xfe{}", "not_utf8", "UTF-8"),
        (b"[1, 2]", "contract", "JSON object"),
        (_with("id", KeyError), "contract", "id"),
        (_with("id", ""), "contract", "id"),
        (_with("output.model", KeyError), "contract", "model"),
        (_with("output.model.app_id", KeyError), "contract", "app_id"),
        (_with("output.input.data", {"metadata": {}}), "contract", "`image` or `text`"),
        (_with("output.input.data", {"image": {}}), "contract", "`url` or `base64`"),
        (_with("output.data", {"concepts": [{"id": "c", "value": 1.5}]}), "contract", "concepts[0].value"),
        (_with("output.data", {"concepts": [{"id": "c", "value": -0.1}]}), "contract", "concepts[0].value"),
        (_with("output.data", {"concepts": [{"id": "c", "value": "high"}]}), "contract", "value"),
        (_with("output.data", {"concepts": [{"id": "c"}]}), "contract", "value"),
        (_with("created_at", "yesterday"), "contract", "created_at"),
        (b'{"id": "e", "v": NaN}', "invalid_json", ""),
    ],
)
def test_bad_events_say_why(raw: bytes, reason: str, fragment: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_event(raw)
    assert caught.value.reason == reason
    assert fragment in caught.value.detail


def test_size_and_depth_limits() -> None:
    with pytest.raises(DecodeError, match="too_large"):
        decode_event(orjson.dumps(GOOD), max_bytes=100)
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"n": deep}
    with pytest.raises(DecodeError) as caught:
        decode_event(_with("output.input.data.metadata", deep))
    assert caught.value.reason == "too_deep"


def test_generated_samples_follow_the_contract() -> None:
    for event in events(300, seed=3):
        decode_event(orjson.dumps(event))


def test_published_schema_files_are_current() -> None:
    """The files producers in other languages use are exactly what the models export."""
    for name, model in SCHEMA_FILES.items():
        published = json.loads((JSON_DIR / name).read_text(encoding="utf-8"))
        assert published == json_schema(model), f"run `collectors schema --out schemas/json` to refresh {name}"


def _published_validator() -> Any:
    import fastjsonschema

    schema = json.loads((JSON_DIR / "prediction-event.schema.json").read_text(encoding="utf-8"))
    return fastjsonschema.compile(schema, use_default=False)


PUBLISHED = _published_validator()

_text = st.text(max_size=6)
_maybe = st.none() | _text
_value = st.floats(-0.5, 1.5, allow_nan=False) | st.integers(-1, 2) | st.none() | _text
_concept = st.fixed_dictionaries({"id": _text, "value": _value}, optional={"name": _maybe | st.integers(-5, 5)})
_event = st.fixed_dictionaries(
    {
        "id": _text,
        "output": st.fixed_dictionaries(
            {
                "model": st.fixed_dictionaries(
                    {"id": _text, "user_id": _text, "app_id": _text},
                    optional={"model_version": st.none() | st.fixed_dictionaries({"id": _text})},
                ),
                "input": st.fixed_dictionaries(
                    {
                        "data": st.fixed_dictionaries(
                            {},
                            optional={
                                "image": st.none()
                                | st.fixed_dictionaries({}, optional={"url": _maybe, "base64": _maybe}),
                                "text": st.none() | st.fixed_dictionaries({}, optional={"raw": _maybe, "url": _maybe}),
                                "metadata": st.dictionaries(
                                    _text, _text | st.integers(-(2**63), 2**63 - 1), max_size=2
                                ),
                            },
                        )
                    },
                    optional={"id": _maybe},
                ),
            },
            optional={
                "data": st.fixed_dictionaries(
                    {},
                    optional={
                        "concepts": st.lists(_concept, max_size=3),
                        "regions": st.lists(
                            st.fixed_dictionaries(
                                {},
                                optional={"data": st.fixed_dictionaries({"concepts": st.lists(_concept, max_size=2)})},
                            ),
                            max_size=2,
                        ),
                    },
                )
            },
        ),
    },
    optional={
        "created_at": st.none() | st.sampled_from(["2026-11-27T10:00:00Z", "2026-11-27T10:00:00.5+02:00", "soon"]),
        "caller": st.none() | st.fixed_dictionaries({"user_id": _text}),
        "extra": _text,
    },
)


@settings(max_examples=3000, deadline=None, database=None)
@given(_event)
def test_fast_validator_agrees_with_the_published_schema(document: dict[str, Any]) -> None:
    """The worker's msgspec checks accept exactly what the published JSON Schema accepts."""
    try:
        PUBLISHED(document)
        published_ok = True
    except Exception:
        published_ok = False
    try:
        decode_event(orjson.dumps(document))
        fast_ok = True
    except DecodeError:
        fast_ok = False
    assert fast_ok == published_ok, document
