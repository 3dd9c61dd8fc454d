"""Ledger totals: the collectors' funnels summed as they are counted, so a summary needs no funnels."""

from __future__ import annotations

from collections import Counter

import orjson

from streams import ledger as outcome
from streams.ledger import Ledger


def counted() -> Ledger:
    ledger = Ledger()
    ledger.events[outcome.EVENTS] += 3
    for cid in ("a", "b", "c"):
        ledger.count(cid, outcome.SEEN)
    ledger.filtered("a", "uncertain")
    ledger.count("b", outcome.QUEUED)
    ledger.count("c", outcome.QUEUED)
    ledger.count("b", outcome.POSTED)
    ledger.filtered("c", "has_output", post_queue=True)
    ledger.count("c", outcome.REQUEUED)
    return ledger


def summed(funnels: dict[str, Counter[str]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for counts in funnels.values():
        total.update(counts)
    return total


def test_totals_are_the_funnels_summed_and_give_pending() -> None:
    ledger = counted()
    assert ledger.totals == summed(ledger.collectors)
    assert ledger.totals["out:uncertain"] == 1 and ledger.totals["post_out:has_output"] == 1
    assert ledger.pending() == 1  # queued 2 + re-queued 1 - posted 1 - filtered after the queue 1


def test_a_summary_merge_reads_events_and_totals_only() -> None:
    document = counted().to_bytes()
    full, summary = Ledger(), Ledger()
    for _ in range(2):  # two partitions' ledgers
        full.merge_json(document)
        summary.merge_json(orjson.loads(document), funnels=False)
    assert summary.collectors == {}
    assert (summary.events, summary.totals) == (full.events, full.totals)
    assert summary.pending() == full.pending() == 2
    assert summary.snapshot(funnels=False) == {"events": {"events": 6}, "totals": dict(full.totals)}


def test_a_document_written_without_totals_gets_them_from_its_funnels() -> None:
    ledger = counted()
    older = {"events": dict(ledger.events), "collectors": {c: dict(n) for c, n in ledger.collectors.items()}}
    for funnels in (True, False):
        merged = Ledger()
        merged.merge_json(older, funnels=funnels)
        assert merged.totals == ledger.totals
        assert merged.pending() == 1
    assert Ledger.from_json(orjson.dumps(older)).totals == ledger.totals
