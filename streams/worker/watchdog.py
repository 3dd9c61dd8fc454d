"""A watchdog of an asyncio event loop: each stall longer than a limit is logged with the stack that held it.

A callback on the loop notes the time every :data:`TICK_S`; a daemon thread checks that the notes keep coming.
When one is late by more than the limit, the thread takes the loop thread's stack at that moment (what is
running instead of the loop); when the loop runs the late callback, the stall's length is logged with that
stack. Heartbeats, timers and every agent wait while a loop is stalled: a stall longer than the session
timeout takes the worker out of its consumer group.

A busy worker stalls often (a batch of 2,000 events is selected in one go; on a loaded machine a thread waits
for the interpreter lock): a stall is logged at once when none was logged in the last :data:`REPORT_EVERY_S`,
else counted, and the count is logged with the longest one's stack once that time has passed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

log = logging.getLogger(__name__)

TICK_S = 0.02
"""How often the loop notes the time: a stall is measured to within this."""
REPORT_EVERY_S = 10.0
"""At most one log record per loop in this time; the stalls between are counted in the next one."""


class LoopWatchdog:
    """Logs every stall of ``loop`` longer than ``limit_s`` (a warning with the stack), from :meth:`start`
    (called on the loop's thread) until :meth:`stop`."""

    def __init__(self, limit_s: float, *, name: str = "event loop") -> None:
        self.limit_s = limit_s
        self.name = name
        self.stalls = 0
        self.longest_s = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = 0
        self._due = 0.0  # when the next tick should run (monotonic)
        self._stack: list[str] | None = None  # taken during the current stall
        self._stopped = threading.Event()
        self._handle: asyncio.TimerHandle | None = None
        self._reported_at = -REPORT_EVERY_S  # monotonic time of the last log record
        self._unreported: list[tuple[float, list[str] | None]] = []  # stalls since: (seconds, stack)

    def start(self) -> None:
        """Watch the running loop (call from a coroutine or callback on it)."""
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._due = time.monotonic() + TICK_S
        self._handle = self._loop.call_later(TICK_S, self._tick)
        threading.Thread(target=self._watch, name=f"watchdog: {self.name}", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        if self._handle is not None:
            self._handle.cancel()

    def _tick(self) -> None:
        now = time.monotonic()
        late = now - self._due
        stack, self._stack = self._stack, None
        if late > self.limit_s:
            self.stalls += 1
            self.longest_s = max(self.longest_s, late)
            self._unreported.append((late, stack))
        if self._unreported and now - self._reported_at >= REPORT_EVERY_S:
            self._report(now)
        self._due = now + TICK_S
        if not self._stopped.is_set() and self._loop is not None:
            self._handle = self._loop.call_later(TICK_S, self._tick)

    def _report(self, now: float) -> None:
        """Log the stalls not logged yet: the longest with its stack."""
        stalls, self._unreported = self._unreported, []
        self._reported_at = now
        longest, stack = max(stalls, key=lambda stall: stall[0])
        where = "".join(stack) if stack else "  (not caught: the stall ended before the watchdog looked)\n"
        more = f" (the longest of {len(stalls)} stalls over {self.limit_s * 1000:.0f} ms)" if len(stalls) > 1 else ""
        log.warning("%s stalled %.0f ms%s; it was running:\n%s", self.name, longest * 1000, more, where)

    def _watch(self) -> None:
        while not self._stopped.wait(TICK_S / 2):
            if self._stack is None and time.monotonic() - self._due > self.limit_s:
                frame = sys._current_frames().get(self._thread_id)
                if frame is not None:
                    self._stack = traceback.format_stack(frame)
