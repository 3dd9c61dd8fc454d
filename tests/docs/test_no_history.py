"""The docs speak of the software as it is: no development history (that belongs in git log and CHANGELOG.md)."""

from __future__ import annotations

import re

import pytest

from tests.docs.shown import ROOT, doc_files

ORDINAL = (
    r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth"
    r"|next|previous|last|this|that|same|earlier|later)"
)
UNITS = r"(?:workers?|times|partitions?|process(?:es)?|requests?|collectors?|events?|inputs?|threads?|ms|s|seconds)"
DASH = r"[-\u2013/,]"  # a hyphen, an en dash, a slash or a comma between numbers
HISTORY = {
    "a work session": rf"\b{ORDINAL}\s+session\b|\bsessions?\s+\d+",
    "a numbered run": rf"\b(?:bench\s+|full\s+|test\s+)?runs?\s+#?\d+(?:\s*{DASH}\s*\d+)*\b(?!\s*{UNITS}\b)",
    "a numbered fix": rf"\bfix(?:es)?\s+#?\d+(?:\s*{DASH}\s*\d+)?\b",
    "a commit": r"\bcommits?\s+`?[0-9a-f]{7,40}\b",
    "how something was found": r"\bfound in the (?:next|previous|last|same)\b|\bthe cause,? found\b",
    "an open question handed on": r"\bleft to the\b|\bissue'?s owner\b|\bowner of the issue\b|\bissue\s+#?\d+",
    "what was tried": r"\btried(?:,| and)\s+(?:not kept|dropped|reverted)\b|\btried first\b|\bthe first version of\b",
}
PATTERNS = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in HISTORY.items()}


def history_in(text: str) -> list[tuple[int, str, str]]:
    """(line, kind, words) for each phrase of development history in a document."""
    return [
        (number, name, match.group(0))
        for number, line in enumerate(text.splitlines(), 1)
        for name, pattern in PATTERNS.items()
        for match in pattern.finditer(line)
    ]


def test_docs_carry_no_development_history() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {kind}: {words!r}"
        for path in doc_files()
        for number, kind, words in history_in(path.read_text(encoding="utf-8"))
    ]
    assert not found, (
        "development history in the docs (say what the software does, guarantees and costs; the story goes in "
        "commit messages and CHANGELOG.md):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "line",
    [
        "### Seventh session (runs 29-33)",
        "The cause, found in the next session (reading Faust's code)",
        "Since run 31 every topic fill ends with os.sync()",
        "which condition the target means is left to the issue's owner",
        "the bench runs 12 / 13 / 14 showed it",
        "reliability fix 9 (partitions with nothing committed)",
        "the fetch changes (commit `199e748`)",
        "Tried and dropped: a select batch judged grouped by source model.",
    ],
)
def test_history_is_recognised(line: str) -> None:
    assert history_in(line), line


@pytest.mark.parametrize(
    "line",
    [
        "A worker that dies is noticed after the 60 s session timeout.",
        "The bench runs 4 times each variant and 2 workers.",
        "Start it with `collectors kafka up`; it runs 2 workers.",
        "Medians of three full runs of `make bench`.",
    ],
)
def test_plain_descriptions_are_not_history(line: str) -> None:
    assert not history_in(line), history_in(line)
