"""The store, on SQLite and on PostgreSQL: hashed keys, key checks, idempotent bootstrap, batch inserts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest

from streams.services.destination.backends import open_store
from streams.services.destination.postgres import PostgresStore
from streams.services.destination.store import (
    AlreadyExistsError,
    BaseStore,
    InsertOutcome,
    InvalidArgumentError,
    NotFoundError,
    Store,
    UnavailableError,
    redact_key,
    redact_url,
)
from streams.tools.localstack import free_port


def test_keys_are_stored_hashed_in_sqlite(tmp_path: Path) -> None:
    with Store(tmp_path / "sub" / "dest.db") as store:
        store.bootstrap("alice", "photos", "demo-key-0123456789", ["PostInputs"])
        _, clear = store.create_key("alice", "photos", ["All"])
        assert store.authenticate(clear) is not None
    files = list(tmp_path.rglob("*"))
    content = b"".join(path.read_bytes() for path in files if path.is_file())
    for key in (clear, "demo-key-0123456789"):
        assert key.encode() not in content
        assert hashlib.sha256(key.encode()).hexdigest().encode() not in content, "salted, not a bare SHA-256"
        assert b"hmac-sha256:" in content
    with Store(tmp_path / "sub" / "dest.db") as reopened:
        record = reopened.authenticate(clear)
        assert record is not None and record.scopes == frozenset({"All"})


def test_two_databases_hash_one_key_differently(tmp_path: Path) -> None:
    digests = []
    for name in ("a.db", "b.db"):
        with Store(tmp_path / name) as store:
            store.bootstrap("alice", "photos", "same-key-0123456789", ["PostInputs"])
            digests.append(store._rows("SELECT key_hash FROM api_keys")[0][0])
    assert digests[0] != digests[1]


def test_a_key_stored_unsalted_by_an_earlier_version_is_found_and_rehashed(tmp_path: Path) -> None:
    with Store(tmp_path / "dest.db") as store:
        key_id, clear = store.create_key("alice", None, ["All"]) if store.ensure_user("alice") else ("", "")
        unsalted = hashlib.sha256(clear.encode()).hexdigest()
        store._changed("UPDATE api_keys SET key_hash = ? WHERE key_id = ?", (unsalted, key_id))
        record = store.authenticate(clear)
        assert record is not None and record.key_id == key_id
        [(stored,)] = store._rows("SELECT key_hash FROM api_keys")
        assert stored.startswith("hmac-sha256:")
        assert store.authenticate(clear) is not None
        assert store.authenticate(clear + "x") is None


def test_keys_are_stored_hashed_in_postgresql(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        store.bootstrap("alice", "photos", "demo-key-0123456789", ["PostInputs"])
        _, clear = store.create_key("alice", "photos", ["All"])
    with psycopg.connect(postgres_url) as db:
        content = str(db.execute("SELECT * FROM api_keys").fetchall())
    for key in (clear, "demo-key-0123456789"):
        assert key not in content
        assert hashlib.sha256(key.encode()).hexdigest() not in content, "salted, not a bare SHA-256"
    with open_store(postgres_url) as reopened:
        record = reopened.authenticate(clear)
        assert record is not None and record.scopes == frozenset({"All"})


def test_open_store_picks_the_backend(tmp_path: Path, postgres_url: str) -> None:
    with open_store(tmp_path / "dest.db") as sqlite, open_store(postgres_url) as postgres:
        assert type(sqlite) is Store and type(postgres) is PostgresStore
    with pytest.raises(UnavailableError, match="cannot open the SQLite database"):
        open_store(tmp_path)  # a directory


def test_unreachable_postgresql_says_what_to_check() -> None:
    url = f"postgresql://someone:s3cret@127.0.0.1:{free_port()}/nowhere"
    with pytest.raises(UnavailableError) as refused:
        open_store(url)
    message = str(refused.value)
    assert message.startswith("cannot connect to PostgreSQL at postgresql://someone:***@127.0.0.1:")
    assert "check the URL" in message and "PostgreSQL runs" in message and "s3cret" not in message


def test_key_records_and_access_checks(store: BaseStore) -> None:
    key_id, clear = store.create_key("alice", "photos", ["PostInputs"])
    record = store.authenticate(clear)
    assert record is not None and record.key_id == key_id
    assert store.get_key_info(key_id) == record
    assert record.access_problem("alice", "photos", "PostInputs") is None
    assert "lacks the ListInputs scope" in (record.access_problem("alice", "photos", "ListInputs") or "")
    assert "not to app bob/other" in (record.access_problem("bob", "other", "PostInputs") or "")
    store.revoke_key(key_id)
    assert store.authenticate(clear) is None
    revoked = store.find_key(clear)
    assert revoked is not None and revoked.revoked
    assert "revoked" in (revoked.access_problem("alice", "photos", "PostInputs") or "")
    assert store.authenticate("no-such-key-at-all") is None
    assert store.get_key_info("nope") is None
    with pytest.raises(NotFoundError, match="key list"):
        store.revoke_key("nope")


def test_all_scope_grants_everything(store: BaseStore) -> None:
    _, clear = store.create_key("alice", None, ["All"])
    record = store.authenticate(clear)
    assert record is not None
    assert record.has_scope("PostInputs") and record.has_scope("ListInputs")
    assert record.covers_app("alice", "anything") and not record.covers_app("bob", "other")


def test_create_refusals_say_what_to_do(store: BaseStore) -> None:
    with pytest.raises(AlreadyExistsError):
        store.create_user("alice")
    with pytest.raises(AlreadyExistsError):
        store.create_app("alice", "photos")
    with pytest.raises(NotFoundError, match="user create carol"):
        store.create_app("carol", "x")
    with pytest.raises(NotFoundError, match="app create alice nope"):
        store.create_key("alice", "nope", ["PostInputs"])
    with pytest.raises(InvalidArgumentError, match="known scopes"):
        store.create_key("alice", "photos", ["PostInput"])
    with pytest.raises(InvalidArgumentError, match="at least one scope"):
        store.create_key("alice", "photos", [])
    with pytest.raises(InvalidArgumentError, match="12-256"):
        store.create_key("alice", "photos", ["All"], "short")
    with pytest.raises(InvalidArgumentError, match="invalid user id"):
        store.create_user("bad/id")


def test_bootstrap_is_idempotent(store: BaseStore) -> None:
    first = store.bootstrap("carol", "demo", "carol-demo-key-1", ["PostInputs", "ListInputs"])
    again = store.bootstrap("carol", "demo", "carol-demo-key-1", ["ListInputs", "PostInputs"])
    assert first == again
    assert len(store.list_keys("carol")) == 1
    with pytest.raises(InvalidArgumentError, match="another owner, app or scopes"):
        store.bootstrap("carol", "demo", "carol-demo-key-1", ["All"])
    store.revoke_key(first.key_id)
    with pytest.raises(InvalidArgumentError, match="revoked"):
        store.bootstrap("carol", "demo", "carol-demo-key-1", ["PostInputs", "ListInputs"])


def test_insert_inputs_reports_duplicates(store: BaseStore) -> None:
    outcomes = store.insert_inputs("alice", "photos", [("a", {"n": 1}), ("b", {"n": 2}), ("a", {"n": 3})])
    assert outcomes == [InsertOutcome.INSERTED, InsertOutcome.INSERTED, InsertOutcome.DUPLICATE]
    assert store.insert_inputs("alice", "photos", [("b", {}), ("c", {})]) == [
        InsertOutcome.DUPLICATE,
        InsertOutcome.INSERTED,
    ]
    assert store.insert_inputs("bob", "other", [("a", {})]) == [InsertOutcome.INSERTED]
    assert store.count_inputs("alice", "photos") == 3
    assert [(i.input_id, i.data) for i in store.list_inputs("alice", "photos")] == [
        ("a", {"n": 1}),
        ("b", {"n": 2}),
        ("c", {}),
    ]
    assert [i.input_id for i in store.list_inputs("alice", "photos", page=2, per_page=2)] == ["c"]


def test_insert_into_unknown_app_stores_nothing(store: BaseStore) -> None:
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        store.insert_inputs("alice", "ghost", [("a", {})])
    assert store.count_inputs("alice", "ghost") == 0


def test_redact_key() -> None:
    assert redact_key("abcdef0123456789") == "abcd…"
    assert redact_key("abc") == "…"


def test_redact_url() -> None:
    assert redact_url("postgresql://me:pw@db:5432/inputs") == "postgresql://me:***@db:5432/inputs"
    assert redact_url("postgres://db/inputs?user=me&password=pw&sslmode=require") == (
        "postgres://db/inputs?user=me&password=***&sslmode=require"
    )
    for unchanged in ("postgresql://me@db:5432/inputs", "postgresql://db:5432/inputs", "/data/me:pw@x.db"):
        assert redact_url(unchanged) == unchanged
