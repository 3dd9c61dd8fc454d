"""Per-collector accounting: every event that reaches a worker ends in exactly one counted outcome."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import orjson

SEEN = "seen"
PAUSED = "paused"
QUEUED = "queued"
REQUEUED = "requeued"
POSTED = "posted"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"
DROPPED = "dropped"
OPERATOR_ERRORS = "operator_errors"
FILTERED_PREFIX = "out:"
POST_FILTERED_PREFIX = "post_out:"

EVENTS = "events"
DECODED = "decoded"
INVALID = "dead_lettered"
UNMATCHED = "unmatched"


class Tally(dict[str, int]):
    """Counts by name; a missing name reads as 0 (and is not added).

    A plain ``dict`` subclass, not ``collections.Counter``: Counter defines ``__delitem__`` in Python, which
    sends every item assignment through a slow generic slot. ``funnel[outcome] += 1`` costs ~80 ns on a
    Counter and ~40 ns here; the selecting agent makes ~40 such increments per event
    (docs/PERFORMANCE.md). Counts are added with :meth:`add` (``update`` replaces, as for any dict).
    """

    def __missing__(self, name: str) -> int:
        return 0

    def add(self, counts: Mapping[str, int]) -> None:
        """Add other counts to these."""
        for name, n in counts.items():
            self[name] += n


def _decoded(document: bytes | dict[str, Any] | None) -> dict[str, Any] | None:
    return orjson.loads(document) if isinstance(document, bytes) else document


def _difference(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name, 0)}


class Ledger:
    """Counters of one topic partition (or one ``simulate`` run): events overall, and a funnel per collector.

    Which records were counted is kept with the counts, so a redelivered record (after a crash or a
    rebalance) is processed again but not counted twice: every record up to ``offset`` was counted, and so
    were those in ``counted`` (records above ``offset`` whose outcome came before an earlier record's, as
    when the posting agent holds a collector's records for a fuller batch).

    A selecting agent's ledger also keeps when it was saved (``saved_at_ms``, the saving worker's clock) and
    how far the queue topic was searched for copies that a killed worker queued after that save
    (``copies_seen``: queue partition -> the offset a search starts from): see ``streams.kafka.copies``.
    """

    def __init__(self) -> None:
        self.events = Tally()
        self.collectors: defaultdict[str, Tally] = defaultdict(Tally)
        self.totals = Tally()  # the collectors' funnels summed: read without the funnels
        self.offset = -1
        self.counted: set[int] = set()
        self.saved_at_ms: int | None = None
        self.copies_seen: dict[int, int] = {}

    @classmethod
    def from_json(cls, document: bytes | dict[str, Any] | None) -> Ledger:
        """A ledger from what a ledger table stores (:meth:`to_bytes`, or its JSON already decoded)."""
        ledger = cls()
        document = _decoded(document)
        if document:
            ledger.merge_json(document)
            ledger.offset = int(document.get("offset", -1))
            ledger.counted = set(document.get("counted") or ())
            ledger.saved_at_ms = document.get("saved_at_ms")
            ledger.copies_seen = {int(p): int(o) for p, o in (document.get("copies_seen") or {}).items()}
        return ledger

    def to_bytes(self) -> bytes:
        """What a ledger table stores per partition: the counts and which records were counted, as JSON.

        Serialized straight from the counters (no copies, no sorting): with 1,000 collectors ~35 µs, where
        building :meth:`snapshot` and encoding it with Faust's JSON codec took ~250 µs, once per partition
        and batch (docs/PERFORMANCE.md).
        """
        return orjson.dumps(
            {
                "events": self.events,
                "collectors": self.collectors,
                "totals": self.totals,
                "offset": self.offset,
                "counted": sorted(self.counted),
                "saved_at_ms": self.saved_at_ms,
                "copies_seen": {str(p): o for p, o in self.copies_seen.items()},
            }
        )

    def was_counted(self, offset: int) -> bool:
        """Whether the record at ``offset`` of this ledger's partition has been counted."""
        return offset <= self.offset or offset in self.counted

    def advance(self, offset: int) -> None:
        """Every record up to ``offset`` is counted: keep only the counted records above it."""
        if offset > self.offset:
            self.offset = offset
            self.counted = {o for o in self.counted if o > offset}

    def merge_json(self, document: bytes | dict[str, Any] | None, *, funnels: bool = True) -> None:
        """Add the counts of a ledger document (as :meth:`to_bytes` or :meth:`snapshot` wrote it); which
        offsets it counted is not read. Without ``funnels``, only the events and the totals are added:
        a summary that costs the same with 1,000 collectors as with 10."""
        document = _decoded(document)
        if not document:
            return
        self.events.add(document.get("events") or {})
        collectors: dict[str, dict[str, int]] = document.get("collectors") or {}
        totals = document.get("totals")
        # A document written before ledgers kept totals: its funnels summed.
        for counts in collectors.values() if totals is None else [totals]:
            self.totals.add(counts)
        if funnels:
            for cid, counts in collectors.items():
                self.collectors[cid].add(counts)

    def add_difference(self, after: Ledger, before: Ledger) -> None:
        """Add what ``after`` counted beyond ``before``, an earlier state of the same partition's ledger."""
        self.events.add(_difference(after.events, before.events))
        self.totals.add(_difference(after.totals, before.totals))
        for cid, counts in after.collectors.items():
            self.collectors[cid].add(_difference(counts, before.collectors.get(cid) or Tally()))

    def judged(self, collector_id: str, outcome: str) -> None:
        """A collector saw an event, and this was its outcome: both counted in one call (the hot path)."""
        funnel, totals = self.collectors[collector_id], self.totals
        funnel[SEEN] += 1
        funnel[outcome] += 1
        totals[SEEN] += 1
        totals[outcome] += 1

    def count(self, collector_id: str, outcome: str, n: int = 1) -> None:
        self.collectors[collector_id][outcome] += n
        self.totals[outcome] += n

    def filtered_after_queue(self, collector_id: str, label: str) -> None:
        """Count a queue record stopped by the step ``label`` of the post-queue workflow."""
        self.count(collector_id, POST_FILTERED_PREFIX + label)

    def pending(self) -> int:
        """Queue records whose outcome (posted, duplicate, dead-lettered, dropped, filtered) is not known yet.

        Records re-queued when a prediction was processed again after a crash count too: each queue record
        has exactly one outcome.
        """
        totals = self.totals
        done = sum(totals[k] for k in (POSTED, DUPLICATE, DEAD_LETTERED, DROPPED))
        done += sum(n for k, n in totals.items() if k.startswith(POST_FILTERED_PREFIX))
        return totals[QUEUED] + totals[REQUEUED] - done

    def snapshot(self, *, funnels: bool = True) -> dict[str, Any]:
        """A JSON-ready copy: ``{"events": {...}, "totals": {outcome: n}, "collectors": {id: {outcome: n}}}``
        (without ``collectors`` when not ``funnels``)."""
        snapshot: dict[str, Any] = {"events": dict(self.events), "totals": dict(self.totals)}
        if funnels:
            snapshot["collectors"] = {cid: dict(counts) for cid, counts in sorted(self.collectors.items())}
        return snapshot
