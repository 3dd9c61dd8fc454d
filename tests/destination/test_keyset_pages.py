"""Listing inputs by key gives the same pages as LIMIT/OFFSET over the insertion order, on both backends,
whatever order the pages are asked in and while inputs keep arriving; on SQLite the listing reads the index
from the previous page's end, never the rows it skips."""

from __future__ import annotations

import random
import sqlite3

import pytest

from streams.services.destination.store import BaseStore, Store

PER_PAGES = (1, 7, 128, 1000)


def _fill(store: BaseStore, start: int, count: int) -> None:
    """``count`` inputs for alice/photos, interleaved with inputs of bob/other (other rows between pages)."""
    for first in range(start, start + count, 50):
        batch = range(first, min(first + 50, start + count))
        store.insert_inputs("alice", "photos", [(f"in-{n:05d}", {"n": n}) for n in batch])
        store.insert_inputs("bob", "other", [(f"other-{n:05d}", {"n": n}) for n in batch[::3]])


def _offset_page(store: BaseStore, page: int, per_page: int) -> list[str]:
    """The page as the OFFSET query gives it: the definition the keyset listing must match."""
    rows = store._rows(
        "SELECT input_id FROM inputs WHERE user_id = ? AND app_id = ? ORDER BY rowid LIMIT ? OFFSET ?",
        ("alice", "photos", per_page, (page - 1) * per_page),
    )
    return [input_id for (input_id,) in rows]


def _page(store: BaseStore, page: int, per_page: int) -> list[str]:
    return [item.input_id for item in store.list_inputs("alice", "photos", page=page, per_page=per_page)]


@pytest.mark.parametrize("per_page", PER_PAGES)
def test_pages_in_order_are_the_offset_pages(store: BaseStore, per_page: int) -> None:
    _fill(store, 0, 1_500)
    pages = -(-1_500 // per_page)
    for page in range(1, pages + 2):  # one past the end: empty
        assert _page(store, page, per_page) == _offset_page(store, page, per_page), (page, per_page)
    assert sum(len(_page(store, p, per_page)) for p in range(1, pages + 2)) == 1_500


def test_pages_asked_out_of_order_and_while_inputs_arrive_are_the_offset_pages(store: BaseStore) -> None:
    _fill(store, 0, 700)
    rng = random.Random(3)
    for round_ in range(6):
        for per_page in (7, 128):
            for page in rng.sample(range(1, 700 // per_page + 3), k=min(8, 700 // per_page + 2)):
                assert _page(store, page, per_page) == _offset_page(store, page, per_page), (round_, page)
        _fill(store, 700 + round_ * 60, 60)  # more arrive: the last pages fill, new ones appear


def test_a_page_ends_remembered_by_one_store_serve_another_opened_later(tmp_path) -> None:
    path = tmp_path / "dest.db"
    with Store(path) as first:
        first.bootstrap("alice", "photos", "key-0123456789ab", ["All"])
        first.create_user("bob")
        first.create_app("bob", "other")
        _fill(first, 0, 300)
        walked = [_page(first, page, 64) for page in range(1, 7)]
    with Store(path) as second:
        _fill(second, 300, 100)
        assert [_page(second, page, 64) for page in range(1, 8)] == [_offset_page(second, p, 64) for p in range(1, 8)]
        assert [_page(second, page, 64) for page in range(1, 5)] == walked[:4]  # full pages never change


def test_sqlite_reads_the_index_from_the_previous_pages_end(tmp_path) -> None:
    with Store(tmp_path / "dest.db") as store:
        store.bootstrap("alice", "photos", "key-0123456789ab", ["All"])
    db = sqlite3.connect(tmp_path / "dest.db")
    listing = (
        "SELECT rowid, input_id, data, created_at FROM inputs WHERE user_id = ? AND app_id = ? AND rowid > ?"
        " ORDER BY rowid LIMIT ?"
    )
    plan = " / ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + listing, ("a", "b", 0, 1)))
    assert plan == "SEARCH inputs USING INDEX inputs_in_order (user_id=? AND app_id=? AND rowid>?)", plan
    end = "SELECT rowid FROM inputs WHERE user_id = ? AND app_id = ? ORDER BY rowid LIMIT 1 OFFSET ?"
    plan = " / ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + end, ("a", "b", 0)))
    assert plan == "SEARCH inputs USING COVERING INDEX inputs_in_order (user_id=? AND app_id=?)", plan
