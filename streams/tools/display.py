"""Tables for people: funnels of collectors."""

from __future__ import annotations

from collections.abc import Mapping

from streams.core import ledger as outcome

WIDTH = 100
"""What the compact table fits in (a terminal of 100 columns)."""
OTHER_OUTCOMES = (outcome.DUPLICATE, outcome.DEAD_LETTERED, outcome.DROPPED, outcome.PAUSED, outcome.OPERATOR_ERRORS)
SHORT = {
    outcome.DUPLICATE: "dup",
    outcome.DEAD_LETTERED: "dead",
    outcome.DROPPED: "dropped",
    outcome.PAUSED: "paused",
    outcome.OPERATOR_ERRORS: "errors",
}


def funnel_table(
    collectors: Mapping[str, Mapping[str, int]], *, delivered_label: str = "posted", wide: bool = False
) -> str:
    """One row per collector: seen, filtered out, queued, delivered and the other outcomes.

    Compact (the default) sums the steps before and after the queue and fits in :data:`WIDTH` columns,
    shortening long collector ids in the middle; ``wide`` has a column per step."""
    keys = {k for counts in collectors.values() for k in counts}
    pre = sorted(k for k in keys if k.startswith(outcome.FILTERED_PREFIX))
    post = sorted(k for k in keys if k.startswith(outcome.POST_FILTERED_PREFIX))
    extra = [k for k in OTHER_OUTCOMES if any(counts.get(k) for counts in collectors.values())]
    if wide:
        columns = [outcome.SEEN, *pre, outcome.QUEUED, *post, outcome.POSTED, *extra]
        headers = ["collector"] + [_header(c, delivered_label) for c in columns]
        rows = [[cid] + [str(counts.get(c, 0)) for c in columns] for cid, counts in sorted(collectors.items())]
        return _render(headers, rows)
    headers = ["collector", "seen", "out", "queued", "out after", delivered_label, *(SHORT[k] for k in extra)]
    rows = [
        [
            cid,
            str(counts.get(outcome.SEEN, 0)),
            str(sum(counts.get(k, 0) for k in pre)),
            str(counts.get(outcome.QUEUED, 0)),
            str(sum(counts.get(k, 0) for k in post)),
            str(counts.get(outcome.POSTED, 0)),
            *(str(counts.get(k, 0)) for k in extra),
        ]
        for cid, counts in sorted(collectors.items())
    ]
    numbers = sum(max(len(row[i]) for row in [headers, *rows]) + 2 for i in range(1, len(headers)))
    room = max(WIDTH - numbers, 12)
    for row in rows:
        row[0] = _shorten(row[0], room)
    table = _render(headers, rows)
    return table + (
        "\n(out: stopped before the queue; out after: after it; --wide: a column per step)" if pre or post else ""
    )


def _shorten(text: str, room: int) -> str:
    """``text`` cut in the middle to ``room`` characters."""
    if len(text) <= room:
        return text
    keep = room - 1
    return text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2) :]


def _render(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return "\n".join(_row(row, widths).rstrip() for row in [headers, *rows])


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
