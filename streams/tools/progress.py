"""Progress on stderr: a bar on a terminal, otherwise a line every few seconds (for logs and CI)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

LINE_EVERY_S = 5.0


@contextmanager
def progress(total: int, label: str, *, every_s: float = LINE_EVERY_S) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``; shows ``label`` with done/total as a bar on a terminal, else as a line every
    ``every_s`` seconds and a last one at the end."""
    if sys.stderr.isatty():
        with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True) as bar:
            yield bar.update
        return
    done = 0
    started = last = time.monotonic()

    def line() -> str:
        share = f" ({100 * done // total}%)" if total else ""
        return f"{label}: {done}/{total}{share}, {time.monotonic() - started:.0f}s"

    def advance(count: int) -> None:
        nonlocal done, last
        done += count
        now = time.monotonic()
        if now - last >= every_s:
            last = now
            click.echo(line(), err=True)

    yield advance
    click.echo(line(), err=True)
