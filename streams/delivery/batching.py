"""Hold queued inputs per destination until a batch is worth a request: pure, testable without a broker.

A request carries up to 128 inputs to one app. Records arrive mixed (many collectors, one partition read at
a time), so the posting agent holds them per destination and sends a batch when it is full, when its oldest
input has waited ``linger_s``, or, when more than ``max_held`` inputs are held, the oldest batches first
(memory stays bounded when the destination is slower than the stream).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BatchRules:
    """When a held batch goes out."""

    size: int = 128
    linger_s: float = 0.2
    max_held: int = 8192


class Batcher(Generic[K, T]):
    """Items held per key, in arrival order, until :meth:`due` hands them out as batches."""

    def __init__(self, rules: BatchRules) -> None:
        self.rules = rules
        self._groups: dict[K, deque[tuple[float, T]]] = {}
        self._held = 0

    def __len__(self) -> int:
        return self._held

    def add(self, key: K, item: T, now: float) -> None:
        """Hold ``item`` for ``key``; ``now`` is when it arrived (monotonic seconds)."""
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = deque()
        group.append((now, item))
        self._held += 1

    def due(self, now: float, *, limit: int) -> list[tuple[K, list[T]]]:
        """At most ``limit`` batches to send now: full ones, then lingered ones, then the oldest while more
        than ``max_held`` are held; each batch leaves the batcher."""
        rules = self.rules
        ranked: list[tuple[int, float, K]] = []
        for key, group in self._groups.items():
            oldest = group[0][0]
            if len(group) >= rules.size:
                ranked.append((0, oldest, key))
            elif now - oldest >= rules.linger_s:
                ranked.append((1, oldest, key))
            elif self._held > rules.max_held:
                ranked.append((2, oldest, key))
        ranked.sort(key=lambda entry: entry[:2])
        batches: list[tuple[K, list[T]]] = []
        for rank, _oldest, key in ranked:
            if len(batches) >= limit or (rank == 2 and self._held <= rules.max_held):
                break
            batches.append((key, self._take(key)))
        return batches

    def next_due_in(self, now: float) -> float | None:
        """Seconds until a batch is due (0: one is due now); None when nothing is held."""
        if not self._groups:
            return None
        if self._held > self.rules.max_held:
            return 0.0
        soonest = None
        for group in self._groups.values():
            if len(group) >= self.rules.size:
                return 0.0
            wait = group[0][0] + self.rules.linger_s - now
            soonest = wait if soonest is None else min(soonest, wait)
        return max(0.0, soonest or 0.0)

    def clear(self) -> list[T]:
        """Drop everything held; return it."""
        dropped = [item for group in self._groups.values() for _at, item in group]
        self._groups.clear()
        self._held = 0
        return dropped

    def _take(self, key: K) -> list[T]:
        group = self._groups[key]
        count = min(len(group), self.rules.size)
        batch = [group.popleft()[1] for _ in range(count)]
        if not group:
            del self._groups[key]
        self._held -= count
        return batch
