"""Ledger totals: the collectors' funnels summed as they are counted, so a summary needs no funnels."""

from __future__ import annotations

from collections import Counter

import orjson

from streams.core import ledger as outcome
from streams.core.ledger import Ledger


def counted() -> Ledger:
    ledger = Ledger()
    ledger.events[outcome.EVENTS] += 3
    ledger.judged("a", outcome.FILTERED_PREFIX + "uncertain")
    ledger.judged("b", outcome.QUEUED)
    ledger.judged("c", outcome.QUEUED)
    ledger.count("b", outcome.POSTED)
    ledger.filtered_after_queue("c", "has_output")
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
    assert ledger.collectors["a"] == {"seen": 1, "out:uncertain": 1}
    assert ledger.totals["seen"] == 3 and ledger.totals["queued"] == 2
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
