"""The `destination` CLI: management commands via CliRunner, `serve` as a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streams.services.destination.backends import open_store
from streams.services.destination.commands import destination
from streams.tools.localstack import free_port

from .support import BACKENDS


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database the commands use: a SQLite file, then a fresh PostgreSQL database (each test runs on both)."""
    return str(tmp_path / "dest.db") if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


def run(*args: str, db: str | None = None) -> Result:
    extra = ["--db", db] if db else []
    return CliRunner().invoke(destination, [*args, *extra], catch_exceptions=False)


def test_user_app_key_lifecycle(db: str) -> None:
    assert run("user", "create", "alice", db=db).output == "created user alice\n"
    again = run("user", "create", "alice", db=db)
    assert again.exit_code == 1 and "already exists" in again.output
    assert run("app", "create", "bob", "photos", db=db).exit_code == 0  # creates user bob
    missing = run("key", "create", "alice", "--app", "nope", db=db)
    assert missing.exit_code == 1 and "app create alice nope" in missing.output

    created = run(
        "key", "create", "bob", "--app", "photos", "--scope", "PostInputs", "--scope", "ListInputs", "--json", db=db
    )
    assert created.exit_code == 0, created.output
    info = json.loads(created.output)
    assert info["user_id"] == "bob" and info["app_id"] == "photos"
    assert info["scopes"] == ["ListInputs", "PostInputs"] and not info["revoked"]
    with open_store(db) as store:
        record = store.authenticate(info["key"])
        assert record is not None and record.key_id == info["key_id"]

    listed = run("key", "list", db=db)
    assert info["key_id"] in listed.output and info["key"] not in listed.output
    assert run("key", "revoke", info["key_id"], db=db).output == f"revoked key {info['key_id']}\n"
    assert "revoked" in run("key", "list", "--user", "bob", db=db).output
    unknown = run("key", "revoke", "nope", db=db)
    assert unknown.exit_code == 1 and "no key with id nope" in unknown.output
    with open_store(db) as store:
        assert store.authenticate(info["key"]) is None


def test_unreachable_database_says_what_to_check() -> None:
    result = run("user", "create", "alice", db=f"postgresql://me:s3cret@127.0.0.1:{free_port()}/inputs")
    assert result.exit_code == 1
    assert "cannot connect to PostgreSQL at postgresql://me:***@" in result.output
    assert "set by --db or $COLLECTORS_DESTINATION_DB" in result.output and "s3cret" not in result.output


def test_key_create_text_output_and_default_scope(db: str) -> None:
    run("app", "create", "alice", "photos", db=db)
    result = run("key", "create", "alice", "--app", "photos", db=db)
    assert result.exit_code == 0
    clear = re.search(r"^key:\s+(\S+)", result.output, re.MULTILINE)
    assert clear is not None
    assert "scopes: PostInputs" in result.output
    with open_store(db) as store:
        record = store.authenticate(clear.group(1))
        assert record is not None and record.scopes == frozenset({"PostInputs"})


def test_key_create_with_given_key_is_idempotent(db: str) -> None:
    run("app", "create", "alice", "photos", db=db)
    args = ("key", "create", "alice", "--app", "photos", "--key", "demo-key-0123456789", "--json")
    first, second = json.loads(run(*args, db=db).output), json.loads(run(*args, db=db).output)
    assert first == second
    clash = run("key", "create", "alice", "--key", "demo-key-0123456789", db=db)
    assert clash.exit_code == 1 and "revoke that one" in clash.output


def test_bootstrap_and_env_db(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECTORS_DESTINATION_DB", db)
    args = ("bootstrap", "demo", "photos", "--key", "demo-key-0123456789", "--scope", "All", "--json")
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == json.loads(run(*args).output)
    assert "demo-key-0123456789" not in first.output
    with open_store(db) as store:
        assert store.app_exists("demo", "photos")
        assert store.authenticate("demo-key-0123456789") is not None


def test_inputs_list(db: str) -> None:
    with open_store(db) as store:
        store.bootstrap("alice", "photos", "alice-key-0123456789", ["All"])
        store.insert_inputs(
            "alice",
            "photos",
            [
                ("a", {"image": {"url": "https://img.example/a.jpg"}, "concepts": [{"id": "cat"}]}),
                ("b", {"text": {"raw": "hello"}}),
            ],
        )
    text = run("inputs", "list", "alice", "photos", db=db).output.splitlines()
    assert text[0].startswith("a  ") and text[0].endswith("image https://img.example/a.jpg  concepts=cat")
    assert text[1].startswith("b  ") and text[1].endswith("text 'hello'")
    assert text[2] == "2 shown (page 1), 2 in alice/photos"
    data = json.loads(
        run("inputs", "list", "alice", "photos", "--json", "--per-page", "1", "--page", "2", db=db).output
    )
    assert data["total"] == 2 and [i["id"] for i in data["inputs"]] == ["b"]
    missing = run("inputs", "list", "alice", "nope", db=db)
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_serve_runs_until_sigterm(db: str) -> None:
    with open_store(db) as store:
        store.bootstrap("alice", "photos", "alice-key-0123456789", ["All"])
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.services.destination", "serve", "--port", "0", "--db", db, "--faults"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (http://\S+) \(db .*, faults on\)", line)
        assert match, line + (process.stderr.read() if process.stderr else "")
        base = match.group(1)
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
            assert json.loads(response.read()) == {"status": "ok"}
        request = urllib.request.Request(
            f"{base}/v2/users/alice/apps/photos/inputs",
            data=json.dumps({"inputs": [{"id": "a", "data": {"text": {"raw": "x"}}}]}).encode(),
            headers={"Authorization": "Key alice-key-0123456789", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["status"]["code"] == 10000
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out.strip() == "destination stopped"
    with open_store(db) as store:
        assert store.count_inputs("alice", "photos") == 1


def test_serve_reports_a_busy_port(db: str) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run("serve", "--port", port, db=db)
    assert result.exit_code == 1
    assert "choose another --host/--port" in result.output
