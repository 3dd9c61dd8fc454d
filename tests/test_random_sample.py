"""random_sample: a pure function of (collector id, event id), keeping the configured fraction."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.operators.random_sample import keeps, sample_point


def test_deterministic_across_calls_and_independent_per_collector() -> None:
    ids = [f"evt-{i}" for i in range(2000)]
    first = [keeps("c1", e, 0.3) for e in ids]
    assert first == [keeps("c1", e, 0.3) for e in ids], "a redelivered event gets the same decision"
    assert first != [keeps("c2", e, 0.3) for e in ids], "collectors sample independently"


def test_point_matches_the_documented_formula() -> None:
    from hashlib import blake2b

    digest = blake2b(b"c1\x00evt-1", digest_size=8).digest()
    assert sample_point("c1", "evt-1") == int.from_bytes(digest, "big") / 2**64


@settings(max_examples=30, deadline=None)
@given(fraction=st.floats(min_value=0.01, max_value=1.0), salt=st.text(min_size=1, max_size=8))
def test_kept_fraction_within_statistical_bounds(fraction: float, salt: str) -> None:
    n = 20_000
    kept = sum(keeps(salt, f"evt-{i}", fraction) for i in range(n))
    sigma = math.sqrt(n * fraction * (1 - fraction))
    assert abs(kept - n * fraction) <= 5 * sigma + 1


def test_one_keeps_everything() -> None:
    assert all(keeps("c", f"e{i}", 1.0) for i in range(1000))
