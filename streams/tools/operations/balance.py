"""The accounting check: every event and every queued input ends in exactly one counted outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.core import ledger as outcome
from streams.core.ledger import Ledger

FAILED = "failed"
"""Inputs a replay or a backfill could not post (the worker dead-letters those instead)."""

_DONE = (outcome.POSTED, outcome.DUPLICATE, outcome.DEAD_LETTERED, outcome.DROPPED, FAILED)


@dataclass(slots=True)
class Balance:
    """Queued inputs still waiting for an outcome, per collector, and every equation that does not hold."""

    pending: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "pending": sum(self.pending.values()),
            "pending_by_collector": self.pending,
            "balanced": self.balanced,
            "problems": self.problems,
        }


def check(ledger: Ledger) -> Balance:
    """events = decoded + dead-lettered; per collector, seen = paused + Σout + operator errors + queued and
    queued = posted + duplicate + dead-lettered + dropped + failed + Σpost-queue out + pending (pending ≥ 0)."""
    balance = Balance()
    events = ledger.events
    if events[outcome.EVENTS] != events[outcome.DECODED] + events[outcome.INVALID]:
        balance.problems.append(
            f"events {events[outcome.EVENTS]} ≠ decoded {events[outcome.DECODED]}"
            f" + dead-lettered {events[outcome.INVALID]}"
        )
    for cid, counts in sorted(ledger.collectors.items()):
        filtered = sum(n for k, n in counts.items() if k.startswith(outcome.FILTERED_PREFIX))
        judged = counts[outcome.PAUSED] + filtered + counts[outcome.OPERATOR_ERRORS] + counts[outcome.QUEUED]
        if counts[outcome.SEEN] != judged:
            balance.problems.append(
                f"{cid}: seen {counts[outcome.SEEN]} ≠ paused + filtered + operator errors + queued = {judged}"
            )
        done = sum(counts[k] for k in _DONE)
        done += sum(n for k, n in counts.items() if k.startswith(outcome.POST_FILTERED_PREFIX))
        balance.pending[cid] = counts[outcome.QUEUED] - done
        if done > counts[outcome.QUEUED]:
            balance.problems.append(f"{cid}: {done} outcomes counted for {counts[outcome.QUEUED]} queued inputs")
    return balance


def summary(ledger: Ledger, balance: Balance) -> str:
    """Lines for people: the overall event counts, what is pending, and whether the ledger balances."""
    events = ledger.events
    lines = [
        f"events: {events[outcome.EVENTS]} = decoded {events[outcome.DECODED]}"
        f" + dead-lettered {events[outcome.INVALID]}; unmatched {events[outcome.UNMATCHED]}",
        f"pending: {sum(balance.pending.values())}"
        + "".join(f"\n  {cid}: {n}" for cid, n in balance.pending.items() if n),
        "ledger balances: yes" if balance.balanced else "ledger balances: NO",
    ]
    lines.extend(f"  {problem}" for problem in balance.problems)
    return "\n".join(lines)
