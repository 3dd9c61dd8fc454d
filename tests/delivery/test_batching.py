"""The batcher holds items per destination and hands out batches: full, lingered, or oldest under pressure."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.delivery.batching import Batcher, BatchRules


def test_a_full_batch_is_due_at_once_and_in_arrival_order() -> None:
    batcher: Batcher[str, int] = Batcher(BatchRules(size=3, linger_s=10))
    for n in range(4):
        batcher.add("a", n, now=0.0)
    assert batcher.next_due_in(0.0) == 0.0
    assert batcher.due(0.0, limit=5) == [("a", [0, 1, 2])]
    assert len(batcher) == 1
    assert batcher.due(0.0, limit=5) == []


def test_a_partial_batch_waits_for_its_linger() -> None:
    batcher: Batcher[str, int] = Batcher(BatchRules(size=128, linger_s=0.25))
    batcher.add("a", 1, now=1.0)
    batcher.add("b", 2, now=1.5)
    assert batcher.due(1.125, limit=4) == []
    assert batcher.next_due_in(1.125) == 0.125
    assert batcher.due(1.25, limit=4) == [("a", [1])]
    assert batcher.due(1.75, limit=4) == [("b", [2])]
    assert batcher.next_due_in(1.75) is None


def test_the_limit_bounds_batches_and_full_ones_go_first() -> None:
    batcher: Batcher[str, int] = Batcher(BatchRules(size=2, linger_s=0.1))
    batcher.add("old", 0, now=0.0)
    batcher.add("full", 1, now=0.5)
    batcher.add("full", 2, now=0.5)
    assert batcher.due(1.0, limit=1) == [("full", [1, 2])]
    assert batcher.due(1.0, limit=1) == [("old", [0])]


def test_over_max_held_the_oldest_go_out_before_their_linger() -> None:
    batcher: Batcher[str, int] = Batcher(BatchRules(size=10, linger_s=60, max_held=3))
    batcher.add("a", 0, now=0.0)
    batcher.add("b", 1, now=1.0)
    batcher.add("c", 2, now=2.0)
    assert batcher.due(3.0, limit=4) == []
    batcher.add("c", 3, now=3.0)
    assert batcher.next_due_in(3.0) == 0.0
    assert batcher.due(3.0, limit=4) == [("a", [0])]  # back at max_held: the rest waits
    assert len(batcher) == 3


def test_clear_returns_everything_held() -> None:
    batcher: Batcher[str, int] = Batcher(BatchRules(size=5))
    batcher.add("a", 1, now=0.0)
    batcher.add("b", 2, now=0.0)
    assert sorted(batcher.clear()) == [1, 2]
    assert len(batcher) == 0 and batcher.next_due_in(0.0) is None


@given(
    st.lists(st.tuples(st.sampled_from("abcd"), st.floats(0, 0.5)), max_size=300),
    st.integers(1, 8),
    st.integers(1, 50),
)
def test_every_item_comes_out_once_in_order_per_key_and_batches_stay_small(
    arrivals: list[tuple[str, float]], limit: int, size: int
) -> None:
    batcher: Batcher[str, int] = Batcher(BatchRules(size=size, linger_s=0.1, max_held=40))
    out: dict[str, list[int]] = {}
    now = 0.0
    for n, (key, step) in enumerate(arrivals):
        now += step
        batcher.add(key, n, now)
        for got_key, batch in batcher.due(now, limit=limit):
            assert 1 <= len(batch) <= size
            out.setdefault(got_key, []).extend(batch)
    while len(batcher):
        now += 1
        for got_key, batch in batcher.due(now, limit=limit):
            out.setdefault(got_key, []).extend(batch)
    expected: dict[str, list[int]] = {}
    for n, (key, _step) in enumerate(arrivals):
        expected.setdefault(key, []).append(n)
    assert out == expected
