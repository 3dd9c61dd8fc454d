"""Tables for people: funnels of collectors."""

from __future__ import annotations

from collections.abc import Mapping

from streams.core import ledger as outcome


def funnel_table(collectors: Mapping[str, Mapping[str, int]], *, delivered_label: str = "posted") -> str:
    """One row per collector: seen, each filter, queued, delivered and the other outcomes."""
    keys = {k for counts in collectors.values() for k in counts}
    pre = sorted(k for k in keys if k.startswith(outcome.FILTERED_PREFIX))
    post = sorted(k for k in keys if k.startswith(outcome.POST_FILTERED_PREFIX))
    outcomes = (outcome.DUPLICATE, outcome.DEAD_LETTERED, outcome.DROPPED, outcome.PAUSED, outcome.OPERATOR_ERRORS)
    extra = [k for k in outcomes if any(counts.get(k) for counts in collectors.values())]
    columns = [outcome.SEEN, *pre, outcome.QUEUED, *post, outcome.POSTED, *extra]
    headers = ["collector"] + [_header(c, delivered_label) for c in columns]
    rows = [[cid] + [str(counts.get(c, 0)) for c in columns] for cid, counts in sorted(collectors.items())]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return "\n".join(_row(row, widths) for row in [headers, *rows])


def _row(cells: list[str], widths: list[int]) -> str:
    """The first cell left-aligned, the counts right-aligned."""
    return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


def _header(column: str, delivered_label: str) -> str:
    if column == outcome.POSTED:
        return delivered_label
    if column == "out:" + "random_sample":
        return "sampled out"
    if column.startswith(outcome.FILTERED_PREFIX):
        return "out " + column.removeprefix(outcome.FILTERED_PREFIX)
    if column.startswith(outcome.POST_FILTERED_PREFIX):
        return "post-queue out " + column.removeprefix(outcome.POST_FILTERED_PREFIX)
    return column.replace("_", " ")
