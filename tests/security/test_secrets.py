"""Sealing keys: round trip, rotation over several secrets, records of earlier versions, secrets from the
environment or a file, and redaction of logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from streams.core.allowlist import AllowedDestinations
from streams.core.ledger import Ledger
from streams.core.models import ModelAnswer, ModelInput, ModelSpec
from streams.core.registry import compile_stored
from streams.core.secrets import (
    ENV_SECRET,
    ENV_SECRET_FILE,
    KEY_REDACTION,
    SecretBox,
    SecretError,
    Undecryptable,
    generate_secret,
    install_redaction,
    load_box,
    open_document,
    opened_or_keyless,
    redacted_document,
    resealed,
    same_key,
    seal_document,
)
from streams.core.selection import after_queue_passes

KEY = "pets-secret-key-0001-abcdef"


def collector_document(key: str = KEY) -> dict[str, Any]:
    return {
        "kind": "collector",
        "user_id": "ann",
        "app_id": "pets",
        "collector": {"id": "dogs", "destination": {"base_url": "http://127.0.0.1:8080", "key": key}},
    }


def test_a_sealed_key_opens_to_itself_and_its_token_holds_no_key() -> None:
    box = SecretBox([generate_secret()])
    sealed = box.seal(KEY)
    assert KEY not in sealed
    assert box.open(sealed) == KEY
    assert box.seal(KEY) != sealed  # a fresh IV each time


def test_a_tampered_or_foreign_token_is_undecryptable() -> None:
    box = SecretBox([generate_secret()])
    sealed = box.seal(KEY)
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(Undecryptable, match="cannot be decrypted"):
        box.open(tampered)
    with pytest.raises(Undecryptable):
        SecretBox([generate_secret()]).open(sealed)
    with pytest.raises(Undecryptable):
        box.open("not a token")


def test_documents_are_sealed_opened_and_resealed_with_the_newest_secret() -> None:
    old, new = generate_secret(), generate_secret()
    before = SecretBox([old])
    sealed = seal_document(collector_document(), before)
    destination = sealed["collector"]["destination"]
    assert "key" not in destination and KEY not in str(sealed)
    assert open_document(sealed, before) == collector_document()

    both = SecretBox([new, old])
    assert open_document(sealed, both) == collector_document()  # the old secret still opens it
    rotated = resealed(sealed, both)
    assert rotated is not None and both.is_current(rotated["collector"]["destination"]["sealed_key"])
    assert open_document(rotated, SecretBox([new])) == collector_document()  # the old secret can be retired
    assert resealed(rotated, both) is None  # idempotent
    with pytest.raises(Undecryptable):
        open_document(rotated, before)


def test_a_clear_record_of_an_earlier_version_is_read_and_sealed_on_rotation() -> None:
    box = SecretBox([generate_secret()])
    clear = collector_document()
    assert open_document(clear, box) == clear
    migrated = resealed(clear, box)
    assert migrated is not None and KEY not in str(migrated)
    assert open_document(migrated, box) == clear
    assert redacted_document(clear)["collector"]["destination"]["key"] == "pets…"


def test_a_workflows_model_keys_are_sealed_opened_redacted_and_resealed() -> None:
    model = {"operator": "model", "protocol": "clarifai", "url": "http://127.0.0.1:1", "model_id": "m"}
    nested = {"operator": "any", "nodes": [model | {"key": "second-model-key-0002"}]}
    workflow = {"kind": "workflow", "workflow": {"id": "w", "nodes": [model | {"key": KEY}, nested]}}
    old, new = generate_secret(), generate_secret()
    sealed = seal_document(workflow, SecretBox([old]))
    assert KEY not in str(sealed) and "second-model-key" not in str(sealed)
    assert sealed["workflow"]["nodes"][1]["nodes"][0]["sealed_key"]
    assert open_document(sealed, SecretBox([old])) == workflow
    rotated = resealed(sealed, SecretBox([new, old]))
    assert rotated is not None and open_document(rotated, SecretBox([new])) == workflow
    assert redacted_document(workflow)["workflow"]["nodes"][0]["key"] == "pets…"
    keyless, problem = opened_or_keyless(sealed, SecretBox([new]))
    assert problem is not None and problem.startswith("cannot call its model")
    assert keyless["workflow"]["nodes"][0]["key"] == "" and "sealed_key" not in str(keyless)


def test_workflows_and_keyless_documents_are_left_alone() -> None:
    box = SecretBox([generate_secret()])
    workflow = {"kind": "workflow", "workflow": {"id": "w", "nodes": []}}
    assert seal_document(workflow, box) is workflow
    assert open_document(workflow, box) is workflow
    assert resealed(workflow, box) is None


def test_secrets_come_from_the_environment_or_a_file(tmp_path: Path) -> None:
    first, second = generate_secret(), generate_secret()
    sealed = SecretBox([second]).seal(KEY)
    assert load_box({ENV_SECRET: f"{first}, {second}"}).open(sealed) == KEY
    path = tmp_path / "secret"
    path.write_text(f"# newest first\n{first}\n\n{second}\n", encoding="utf-8")
    box = load_box({ENV_SECRET_FILE: str(path)})
    assert box.count == 2 and box.open(sealed) == KEY
    assert not box.is_current(sealed)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "collectors secrets generate"),
        ({ENV_SECRET: " , "}, "collectors secrets generate"),
        ({ENV_SECRET: "too-short"}, "secret #1 of COLLECTORS_SECRET_KEY is not a Fernet secret"),
        ({ENV_SECRET_FILE: "/nonexistent/secret"}, "cannot read COLLECTORS_SECRET_KEY_FILE"),
        ({ENV_SECRET: generate_secret(), ENV_SECRET_FILE: "/x"}, "not both"),
    ],
)
def test_a_missing_or_malformed_secret_says_how_to_make_one(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SecretError, match=message):
        load_box(environ)


def test_the_error_of_a_malformed_secret_does_not_show_it() -> None:
    with pytest.raises(SecretError) as caught:
        load_box({ENV_SECRET: "x" * 40})
    assert "x" * 40 not in str(caught.value)


def test_keys_compare_in_constant_time_helper() -> None:
    assert same_key(KEY, KEY)
    assert not same_key(KEY, KEY[:-1] + "x")


def test_logs_and_tracebacks_redact_every_opened_key(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    install_redaction()  # idempotent
    box = SecretBox([generate_secret()])
    clear = "redact-me-" + generate_secret()[:20]
    box.open(box.seal(clear))
    log = logging.getLogger("tests.security")
    with caplog.at_level(logging.DEBUG):
        log.debug("posting with %s", clear)
        try:
            raise RuntimeError(f"headers {{'Authorization': 'Key {clear}'}}")
        except RuntimeError:
            log.exception("request failed")
    assert clear not in caplog.text
    assert "reda…" in caplog.text
    assert KEY_REDACTION.scrub(f"x{clear}y") == "xreda…y"


async def test_a_worker_calls_a_model_with_the_key_it_opened() -> None:
    """The stored documents as workers read them: the model node of a sealed workflow asks with the clear key."""
    box = SecretBox([generate_secret()])
    model = {"operator": "model", "protocol": "clarifai", "url": "http://127.0.0.1:1", "model_id": "m", "key": KEY}
    stamps = {"created_at": "2026-12-07T00:00:00Z", "modified_at": "2026-12-07T00:00:00Z"}
    workflow = {"kind": "workflow", "user_id": "ann", "app_id": "pets", "workflow": {"id": "w", "nodes": [model]}}
    collector = collector_document("destination-key-0003")
    collector["collector"] |= {
        "source": {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "general-image-recognition"},
        "post_queue_workflow_id": "w",
    }
    collector["collector"]["destination"] |= {"user_id": "ann", "app_id": "pets"}
    state = {"w": seal_document(workflow | stamps, box), "c": seal_document(collector | stamps, box)}
    [compiled], errors = compile_stored(state, box)
    assert errors == {}

    asked: list[str | None] = []

    class Recorder:
        async def predict(self, spec: ModelSpec, input_id: str, item: ModelInput) -> ModelAnswer:
            asked.append(spec.key)
            return ModelAnswer(concepts=[])

    original = {"id": "e1", "output": {"input": {"id": "i1", "data": {"text": {"raw": "hi"}}}, "data": {}}}
    record = {"collector_id": compiled.id, "event_id": "e1", "input": {"id": "x", "data": {}}, "original": original}
    assert await after_queue_passes(compiled, record, Ledger(), {}, Recorder())
    assert asked == [KEY]

    _, errors = compile_stored(state, SecretBox([generate_secret()]))  # a secret that opens nothing
    assert "cannot call its model" in errors["w"]


def test_a_worker_does_not_call_a_model_off_the_allow_list() -> None:
    """A workflow written to the control topic behind the API's back, with a model off the allow-list, does not
    run on workers that have one."""
    box = SecretBox([generate_secret()])
    model = {"operator": "model", "protocol": "open_inference", "url": "http://elsewhere:8000", "model_id": "m"}
    stamps = {"created_at": "2026-12-07T00:00:00Z", "modified_at": "2026-12-07T00:00:00Z"}
    workflow = {"kind": "workflow", "user_id": "ann", "app_id": "pets", "workflow": {"id": "w", "nodes": [model]}}
    _, errors = compile_stored(
        {"w": workflow | stamps}, box, AllowedDestinations(["http://127.0.0.1:8080"], option="--allowed-destination")
    )
    assert "cannot call its model: model http://elsewhere:8000 is not an allowed destination" in errors["w"]
    assert compile_stored({"w": workflow | stamps}, box, None)[1] == {}
