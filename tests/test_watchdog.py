"""The loop watchdog logs a stall of the event loop with the stack that held it, and stays quiet otherwise."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from streams.worker.watchdog import LoopWatchdog


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # a blocking call on the loop's thread


async def test_a_stall_is_logged_with_its_stack(caplog: pytest.LogCaptureFixture) -> None:
    watchdog = LoopWatchdog(0.1, name="test loop")
    watchdog.start()
    try:
        await asyncio.sleep(0.1)
        with caplog.at_level(logging.WARNING, logger="streams.worker.watchdog"):
            hold_the_loop(0.4)
            await asyncio.sleep(0.1)  # the late tick runs and logs
    finally:
        watchdog.stop()
    stalls = [record.getMessage() for record in caplog.records if "stalled" in record.getMessage()]
    assert len(stalls) == 1, stalls
    assert stalls[0].startswith("test loop stalled ")
    assert "hold_the_loop" in stalls[0]
    assert watchdog.stalls == 1 and 0.35 < watchdog.longest_s < 1.0


async def test_short_pauses_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    watchdog = LoopWatchdog(0.2, name="test loop")
    watchdog.start()
    try:
        with caplog.at_level(logging.WARNING, logger="streams.worker.watchdog"):
            for _ in range(5):
                hold_the_loop(0.05)
                await asyncio.sleep(0.03)
    finally:
        watchdog.stop()
    assert watchdog.stalls == 0
    assert not [record for record in caplog.records if "stalled" in record.getMessage()]


async def test_stalls_in_quick_succession_are_logged_together(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("streams.worker.watchdog.REPORT_EVERY_S", 0.5)
    watchdog = LoopWatchdog(0.1, name="test loop")
    watchdog.start()
    try:
        with caplog.at_level(logging.WARNING, logger="streams.worker.watchdog"):
            for seconds in (0.2, 0.15, 0.3):  # the first at once; the other two together, 0.5 s later
                hold_the_loop(seconds)
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.6)
    finally:
        watchdog.stop()
    stalls = [record.getMessage() for record in caplog.records if "stalled" in record.getMessage()]
    assert watchdog.stalls == 3
    assert len(stalls) == 2, stalls
    assert "(the longest of 2 stalls over 100 ms)" in stalls[1] and "hold_the_loop" in stalls[1]
    longest_ms = int(stalls[1].removeprefix("test loop stalled ").split(" ")[0])
    assert 250 <= longest_ms < 500, stalls[1]  # the 0.3 s one, measured to within a tick
