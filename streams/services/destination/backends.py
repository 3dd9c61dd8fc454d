"""Which store a target names: PostgreSQL for a postgresql:// URL, else SQLite.

Apart from the backends it chooses between, so that neither imports the other (`postgres.py` builds on
`store.py`); psycopg is imported only when a URL asks for PostgreSQL, as it comes with the `postgres` extra.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from streams.services.destination.store import POSTGRES_SCHEMES, BaseStore, Store, UnavailableError


def open_store(target: str | Path) -> BaseStore:
    """The store at `target`: PostgreSQL for a postgresql:// URL, else the SQLite file at that path (or ":memory:").

    UnavailableError, saying what to check, when the database cannot be opened or reached.
    """
    location = str(target)
    if location.startswith(POSTGRES_SCHEMES):
        try:
            from streams.services.destination.postgres import PostgresStore  # psycopg comes with the `postgres` extra
        except ImportError as exc:
            raise UnavailableError(
                f"a PostgreSQL database needs psycopg 3 ({exc}); install it: pip install 'collectors[postgres]'"
            ) from exc
        return PostgresStore(location)
    try:
        return Store(location)
    except sqlite3.Error as exc:
        raise UnavailableError(f"cannot open the SQLite database {location}: {exc}; check the path") from exc
