"""The per-key token bucket of the management API."""

from __future__ import annotations

from streams.services.management.guard import KeyThrottle


def test_a_key_gets_its_burst_then_its_rate_and_other_keys_are_not_affected() -> None:
    now = [0.0]
    throttle = KeyThrottle(rate_per_s=2.0, burst=3, clock=lambda: now[0])
    assert [throttle.wait_s("key-a-00000001") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.wait_s("key-a-00000001") == 0.5
    assert throttle.wait_s("key-b-00000001") == 0.0
    now[0] = 0.5
    assert throttle.wait_s("key-a-00000001") == 0.0
    assert throttle.wait_s("key-a-00000001") > 0


def test_the_throttle_holds_no_key() -> None:
    throttle = KeyThrottle(rate_per_s=1.0, burst=1)
    throttle.wait_s("a-key-never-held-00001")
    assert "a-key-never-held-00001" not in repr(vars(throttle))
