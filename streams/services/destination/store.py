"""Storage of the reference destination: users, apps, hashed API keys and inputs.

What every backend shares (records, checks, the queries) is here, with the SQLite backend, `Store`;
PostgreSQL's is in `postgres.py`. `backends.open_store` picks one from a path or a postgresql:// URL.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

import orjson

from streams.core.clock import utc_now

SCOPE_ALL = "All"
SCOPE_POST_INPUTS = "PostInputs"
SCOPE_LIST_INPUTS = "ListInputs"
KNOWN_SCOPES = frozenset({SCOPE_ALL, SCOPE_POST_INPUTS, SCOPE_LIST_INPUTS})

MIN_KEY_LENGTH = 12
MAX_KEY_LENGTH = 256
WAL_CHECKPOINT_PAGES = 16_384
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_KEY_RE = re.compile(r"^[\x21-\x7e]+$")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
PAGE_ENDS_KEPT = 4096
"""Ends of input pages a store remembers (the oldest forgotten first): a listing walks pages in order."""
INPUTS_ORDER_INDEX = "CREATE INDEX IF NOT EXISTS inputs_in_order ON inputs (user_id, app_id{order})"
"""The index listings read by key: an app's inputs in insertion order (``order``: the backend's rowid column,
empty for SQLite, whose indexes end with the rowid)."""

USERS_AND_APPS_SCHEMA = """
CREATE TABLE IF NOT EXISTS key_salt (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    salt TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS apps (
    user_id TEXT NOT NULL REFERENCES users(id),
    app_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, app_id)
);
"""
"""The tables every backend creates alike; keys and inputs differ (booleans, insertion order)."""

_SCHEMA = (
    USERS_AND_APPS_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id),
    app_id TEXT,
    scopes TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inputs (
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    input_id TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, app_id, input_id),
    FOREIGN KEY (user_id, app_id) REFERENCES apps(user_id, app_id)
);
"""
)


class StoreError(Exception):
    """A store operation was refused; the message says what to do."""


class NotFoundError(StoreError):
    """The named user, app or key does not exist."""


class AlreadyExistsError(StoreError):
    """The user or app to create exists already."""


class InvalidArgumentError(StoreError):
    """An id, scope or key is malformed."""


class UnavailableError(StoreError):
    """The database cannot be opened or reached."""


class InsertOutcome(StrEnum):
    """What happened to one input of a batch."""

    INSERTED = "inserted"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key as stored: never the clear key, only its id, owner, app and scopes."""

    key_id: str
    user_id: str
    app_id: str | None
    scopes: frozenset[str]
    revoked: bool
    created_at: str

    def has_scope(self, scope: str) -> bool:
        """Whether the key grants `scope` (a key with "All" grants every scope)."""
        return SCOPE_ALL in self.scopes or scope in self.scopes

    def covers_app(self, user_id: str, app_id: str) -> bool:
        """Whether the key may act on app `user_id/app_id` (an app-less key covers all its user's apps)."""
        return self.user_id == user_id and self.app_id in (None, app_id)

    def access_problem(self, user_id: str, app_id: str, scope: str) -> str | None:
        """Why this key may not use `scope` on `user_id/app_id`, or None when it may."""
        if self.revoked:
            return f"key id {self.key_id} was revoked; create a new key"
        if not self.covers_app(user_id, app_id):
            owner = f"{self.user_id}/{self.app_id}" if self.app_id else f"user {self.user_id}"
            return f"key id {self.key_id} belongs to {owner}, not to app {user_id}/{app_id}"
        if not self.has_scope(scope):
            held = ", ".join(sorted(self.scopes)) or "none"
            return f"key id {self.key_id} lacks the {scope} scope (it has: {held})"
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view of the record (no secret in it)."""
        return {
            "key_id": self.key_id,
            "user_id": self.user_id,
            "app_id": self.app_id,
            "scopes": sorted(self.scopes),
            "revoked": self.revoked,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class StoredInput:
    """One stored input: its id, the `data` object as posted, and when it was stored."""

    input_id: str
    data: dict[str, Any]
    created_at: str

    def to_json(self) -> dict[str, Any]:
        """The input as the inputs API returns it."""
        return {"id": self.input_id, "data": self.data, "created_at": self.created_at}


SALTED = "hmac-sha256:"


def hash_key(clear_key: str, salt: bytes) -> str:
    """The salted digest under which a key is stored: HMAC-SHA256 of the key under the database's salt."""
    return SALTED + hmac.new(salt, clear_key.encode(), hashlib.sha256).hexdigest()


def unsalted_hash(clear_key: str) -> str:
    """The digest earlier versions stored (SHA-256 without salt), found once and replaced by the salted one."""
    return hashlib.sha256(clear_key.encode()).hexdigest()


def redact_key(clear_key: str) -> str:
    """A key safe to log or echo: its first 4 characters and an ellipsis."""
    return f"{clear_key[:4]}…" if len(clear_key) >= 8 else "…"


def redact_url(location: str) -> str:
    """`location` safe to print: a postgresql:// URL's password (user part or `password=` parameter) becomes ***."""
    if not location.startswith(POSTGRES_SCHEMES):
        return location
    location = re.sub(r"^(\w+://[^:@/]*:)[^@/]*@", r"\1***@", location)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", location)


def _check_id(kind: str, value: str) -> None:
    if not _ID_RE.fullmatch(value):
        raise InvalidArgumentError(
            f"invalid {kind} id {value!r}: use 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )


def _check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    result = frozenset(scopes)
    if not result:
        raise InvalidArgumentError(f"give at least one scope, among: {', '.join(sorted(KNOWN_SCOPES))}")
    unknown = result - KNOWN_SCOPES
    if unknown:
        raise InvalidArgumentError(
            f"unknown scope(s) {', '.join(sorted(unknown))}; known scopes: {', '.join(sorted(KNOWN_SCOPES))}"
        )
    return result


def _check_clear_key(clear_key: str) -> None:
    if not MIN_KEY_LENGTH <= len(clear_key) <= MAX_KEY_LENGTH or not _KEY_RE.fullmatch(clear_key):
        raise InvalidArgumentError(
            f"a key must be {MIN_KEY_LENGTH}-{MAX_KEY_LENGTH} printable characters without spaces"
        )


class BaseStore(ABC):
    """The destination's database, whatever the backend: every query is written here once, with `?` placeholders.

    A backend runs them (`_rows`, `_changed`), opens transactions and stores a batch of inputs its fastest way.
    Its tables have a `rowid` in insertion order (SQLite's implicit one), which listings are sorted by.
    """

    ORDERED_COMMITS = False
    """Whether inputs are committed in insertion order (a row never appears before one already listed)."""

    def __init__(self) -> None:
        self._page_ends: dict[tuple[str, str, int, int], int] = {}  # (user, app, page, per_page): last rowid

    @abstractmethod
    def close(self) -> None:
        """Close the database connection."""

    @abstractmethod
    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows `query` selects."""

    @abstractmethod
    def _changed(self, statement: str, args: Sequence[Any] = ()) -> int:
        """Run `statement`; how many rows it inserted, updated or deleted."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[object]:
        """A transaction around the block: committed at its end, rolled back if it raises."""

    @abstractmethod
    def insert_inputs(
        self, user_id: str, app_id: str, inputs: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[InsertOutcome]:
        """Store (input_id, data) pairs in one transaction; an id already stored is a duplicate, kept once."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _create_tables(self, schema: str) -> None:
        """Create the tables, and the database's random salt of key digests (once; kept in the database)."""
        with self._transaction():
            for statement in schema.split(";"):
                if statement.strip():
                    self._changed(statement)
            made = secrets.token_hex(32)
            self._changed("INSERT INTO key_salt (id, salt) VALUES (1, ?) ON CONFLICT DO NOTHING", (made,))
            row = self._row("SELECT salt FROM key_salt WHERE id = 1", ())
        assert row is not None
        self._salt = bytes.fromhex(row[0])

    _salt = b""

    def _key_hash(self, clear_key: str) -> str:
        """The key's salted digest."""
        return hash_key(clear_key, self._salt)

    def _row(self, query: str, args: Sequence[Any]) -> tuple[Any, ...] | None:
        rows = self._rows(query, args)
        return rows[0] if rows else None

    # users and apps

    # An id that could not have been created (e.g. one with a NUL from a request's path, which PostgreSQL would
    # refuse as a query argument) names nothing, on every backend alike.

    def user_exists(self, user_id: str) -> bool:
        """Whether user `user_id` exists."""
        return bool(_ID_RE.fullmatch(user_id)) and self._row("SELECT 1 FROM users WHERE id = ?", (user_id,)) is not None

    def app_exists(self, user_id: str, app_id: str) -> bool:
        """Whether app `user_id/app_id` exists."""
        if not (_ID_RE.fullmatch(user_id) and _ID_RE.fullmatch(app_id)):
            return False
        return self._row("SELECT 1 FROM apps WHERE user_id = ? AND app_id = ?", (user_id, app_id)) is not None

    def create_user(self, user_id: str) -> None:
        """Create user `user_id`; AlreadyExistsError if it exists."""
        if not self.ensure_user(user_id):
            raise AlreadyExistsError(f"user {user_id} already exists")

    def ensure_user(self, user_id: str) -> bool:
        """Create user `user_id` unless it exists; True when it was created."""
        _check_id("user", user_id)
        with self._transaction():
            created = self._changed(
                "INSERT INTO users (id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (user_id, utc_now())
            )
            return created == 1

    def create_app(self, user_id: str, app_id: str) -> None:
        """Create app `user_id/app_id`; NotFoundError if the user is missing, AlreadyExistsError if taken."""
        if not self.ensure_app(user_id, app_id):
            raise AlreadyExistsError(f"app {user_id}/{app_id} already exists")

    def ensure_app(self, user_id: str, app_id: str) -> bool:
        """Create app `user_id/app_id` unless it exists (the user must exist); True when created."""
        _check_id("app", app_id)
        if not self.user_exists(user_id):
            raise NotFoundError(f"user {user_id} does not exist; create it first (`user create {user_id}`)")
        with self._transaction():
            created = self._changed(
                "INSERT INTO apps (user_id, app_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (user_id, app_id, utc_now()),
            )
            return created == 1

    # keys

    def create_key(
        self,
        user_id: str,
        app_id: str | None,
        scopes: Iterable[str],
        clear_key: str | None = None,
    ) -> tuple[str, str]:
        """Create a key for `user_id` (limited to `app_id` unless None) and return (key_id, clear_key).

        The clear key is only returned here; the store keeps its sha256. With `clear_key` given, the
        call is idempotent: the same key already stored for the same user, app and scopes returns its
        existing id; the same key stored with anything else is refused.
        """
        wanted = _check_scopes(scopes)
        if app_id is None:
            if not self.user_exists(user_id):
                raise NotFoundError(f"user {user_id} does not exist; create it first (`user create {user_id}`)")
        elif not self.app_exists(user_id, app_id):
            raise NotFoundError(
                f"app {user_id}/{app_id} does not exist; create it first (`app create {user_id} {app_id}`)"
            )
        if clear_key is None:
            clear_key = secrets.token_hex(16)
        else:
            _check_clear_key(clear_key)
            existing = self.find_key(clear_key)
            if existing is not None:
                if existing.revoked:
                    raise InvalidArgumentError(f"this key was revoked (key id {existing.key_id}); choose another")
                if (existing.user_id, existing.app_id, existing.scopes) != (user_id, app_id, wanted):
                    raise InvalidArgumentError(
                        f"this key already exists (key id {existing.key_id}) with another owner, app or scopes;"
                        " choose another key or revoke that one"
                    )
                return existing.key_id, clear_key
        key_id = secrets.token_hex(6)
        with self._transaction():
            self._changed(
                "INSERT INTO api_keys (key_id, key_hash, user_id, app_id, scopes, revoked, created_at)"
                " VALUES (?, ?, ?, ?, ?, FALSE, ?)",
                (key_id, self._key_hash(clear_key), user_id, app_id, " ".join(sorted(wanted)), utc_now()),
            )
        return key_id, clear_key

    def revoke_key(self, key_id: str) -> None:
        """Revoke key `key_id` (idempotent); NotFoundError if no such key."""
        with self._transaction():
            if self._changed("UPDATE api_keys SET revoked = TRUE WHERE key_id = ?", (key_id,)) == 0:
                raise NotFoundError(f"no key with id {key_id}; see the ids with `key list`")

    def find_key(self, clear_key: str) -> KeyRecord | None:
        """The record of a clear key, revoked or not; None if unknown.

        Looked up by digest, and the digest compared in constant time; a key stored unsalted by an earlier
        version is found once and its digest replaced by the salted one.
        """
        salted, unsalted = self._key_hash(clear_key), unsalted_hash(clear_key)
        row = self._row(
            "SELECT key_id, user_id, app_id, scopes, revoked, created_at, key_hash FROM api_keys"
            " WHERE key_hash IN (?, ?)",
            (salted, unsalted),
        )
        if row is None:
            return None
        record, stored = self._key_record(row[:-1]), row[-1]
        if hmac.compare_digest(stored.encode(), unsalted.encode()):
            with self._transaction():
                self._changed("UPDATE api_keys SET key_hash = ? WHERE key_id = ?", (salted, record.key_id))
        elif not hmac.compare_digest(stored.encode(), salted.encode()):
            return None
        return record

    def authenticate(self, clear_key: str) -> KeyRecord | None:
        """The record of a usable (known, not revoked) key; None otherwise."""
        record = self.find_key(clear_key)
        return None if record is None or record.revoked else record

    def get_key_info(self, key_id: str) -> KeyRecord | None:
        """The record of key `key_id` (for management calls that name a key by id); None if unknown."""
        return self._key_where("key_id = ?", key_id)

    def list_keys(self, user_id: str | None = None) -> list[KeyRecord]:
        """All keys, or those of `user_id`, oldest first."""
        query = "SELECT key_id, user_id, app_id, scopes, revoked, created_at FROM api_keys"
        args: tuple[str, ...] = ()
        if user_id is not None:
            query += " WHERE user_id = ?"
            args = (user_id,)
        return [self._key_record(row) for row in self._rows(query + " ORDER BY rowid", args)]

    def bootstrap(self, user_id: str, app_id: str, clear_key: str, scopes: Iterable[str]) -> KeyRecord:
        """Ensure user, app and the given key exist (idempotent); return the key's record."""
        self.ensure_user(user_id)
        self.ensure_app(user_id, app_id)
        key_id, _ = self.create_key(user_id, app_id, scopes, clear_key)
        record = self.get_key_info(key_id)
        assert record is not None
        return record

    def _key_where(self, condition: str, value: str) -> KeyRecord | None:
        row = self._row(
            f"SELECT key_id, user_id, app_id, scopes, revoked, created_at FROM api_keys WHERE {condition}", (value,)
        )
        return None if row is None else self._key_record(row)

    @staticmethod
    def _key_record(row: tuple[Any, ...]) -> KeyRecord:
        key_id, user_id, app_id, scopes, revoked, created_at = row
        return KeyRecord(key_id, user_id, app_id, frozenset(scopes.split()), bool(revoked), created_at)

    # inputs

    def list_inputs(self, user_id: str, app_id: str, page: int = 1, per_page: int = 128) -> list[StoredInput]:
        """One page (from 1) of the app's inputs, in insertion order, read by key: the rows after the previous
        page's last, through the index on (user, app, insertion order).

        Inputs are only ever added. Where each is also committed after all others (:attr:`ORDERED_COMMITS`),
        a page's last row stays its last: the ends of the pages served are remembered, and the next page starts
        after its predecessor's end without reading the rows before. Otherwise, or for a page whose predecessor
        was not served here, that end is found in the index alone (no input's data is read to skip it).
        """
        after = 0 if page == 1 else self._page_end(user_id, app_id, page - 1, per_page)
        if after is None:
            return []
        rows = self._rows(
            "SELECT rowid, input_id, data, created_at FROM inputs WHERE user_id = ? AND app_id = ? AND rowid > ?"
            " ORDER BY rowid LIMIT ?",
            (user_id, app_id, after, per_page),
        )
        if len(rows) == per_page and self.ORDERED_COMMITS:
            self._remember_page_end((user_id, app_id, page, per_page), rows[-1][0])
        return [StoredInput(input_id, orjson.loads(data), created_at) for _, input_id, data, created_at in rows]

    def _page_end(self, user_id: str, app_id: str, page: int, per_page: int) -> int | None:
        """The insertion order (rowid) of the last input of a full page; None when the app has fewer inputs."""
        key = (user_id, app_id, page, per_page)
        end = self._page_ends.get(key)
        if end is None:
            row = self._row(
                "SELECT rowid FROM inputs WHERE user_id = ? AND app_id = ? ORDER BY rowid LIMIT 1 OFFSET ?",
                (user_id, app_id, page * per_page - 1),
            )
            if row is None:
                return None
            end = int(row[0])
            if self.ORDERED_COMMITS:
                self._remember_page_end(key, end)
        return end

    def _remember_page_end(self, key: tuple[str, str, int, int], end: int) -> None:
        ends = self._page_ends
        if len(ends) >= PAGE_ENDS_KEPT:
            del ends[next(iter(ends))]  # the oldest remembered
        ends[key] = end

    def get_input(self, user_id: str, app_id: str, input_id: str) -> StoredInput | None:
        """One stored input, or None."""
        if "\x00" in input_id:  # never stored: the service refuses it
            return None
        row = self._row(
            "SELECT input_id, data, created_at FROM inputs WHERE user_id = ? AND app_id = ? AND input_id = ?",
            (user_id, app_id, input_id),
        )
        return None if row is None else StoredInput(row[0], orjson.loads(row[1]), row[2])

    def count_inputs(self, user_id: str, app_id: str) -> int:
        """How many inputs the app holds."""
        rows = self._rows("SELECT COUNT(*) FROM inputs WHERE user_id = ? AND app_id = ?", (user_id, app_id))
        return int(rows[0][0])


class Store(BaseStore):
    """The SQLite backend: one database file (or ":memory:"), safe to share with the CLI."""

    ORDERED_COMMITS = True  # one writer at a time: a row's rowid is taken under the write lock it commits with

    def __init__(self, path: str | Path = ":memory:") -> None:
        super().__init__()
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA busy_timeout = 5000")
        if target != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a commit is durable against a crash of the service (not of the machine) and
            # costs no fsync; with FULL every request's commit waited for an fsync (~18 ms here), and the
            # service, one event loop, did nothing else meanwhile.
            self._db.execute("PRAGMA synchronous = NORMAL")
            # The log is copied into the database (a checkpoint, two fsyncs, in the commit that fills it) every
            # 16,384 pages (64 MB), not SQLite's 1,000 (4 MB, ~30 requests of 128 inputs): the service, one
            # event loop, answers nothing while a checkpoint waits. Batched posting in the bench went from
            # 31,328-33,436 to 37,490-41,338 inputs/s. The log is synced only at checkpoints, so a crash of
            # the machine can lose up to 64 MB of the latest inputs (docs/PERFORMANCE.md).
            self._db.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        self._create_tables(_SCHEMA + ";" + INPUTS_ORDER_INDEX.format(order=""))

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(query, args).fetchall()

    def _changed(self, statement: str, args: Sequence[Any] = ()) -> int:
        return self._db.execute(statement, args).rowcount

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def insert_inputs(
        self, user_id: str, app_id: str, inputs: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[InsertOutcome]:
        """Store (input_id, data) pairs in one transaction; an id already stored is a duplicate, kept once."""
        now = utc_now()
        outcomes: list[InsertOutcome] = []
        with self._transaction():
            for input_id, data in inputs:
                cursor = self._db.execute(
                    "INSERT INTO inputs (user_id, app_id, input_id, data, created_at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (user_id, app_id, input_id, orjson.dumps(data).decode(), now),
                )
                outcomes.append(InsertOutcome.INSERTED if cursor.rowcount == 1 else InsertOutcome.DUPLICATE)
        return outcomes
