"""Files, tests and links the docs name exist: a doc cannot point at a module that moved or a test renamed.

Paths under deploy/ are not checked: the deployment guide names files the user creates there.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.docs.shown import ROOT, doc_files

PATH_SPAN = re.compile(r"`((?:streams|schemas|tests|bench|examples|docs)/[^`\s:]*)(?:::(\w+))?`")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def missing_in(text: str, name: str, folder: Path) -> list[str]:
    """What a document names that is not there: `path`, `path::test_function`, or a link relative to its folder."""
    missing = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{name}:{number}"
        for path, function in PATH_SPAN.findall(line):
            target = ROOT / path
            exists = any(ROOT.glob(path)) if "*" in path else target.exists()
            if not exists:
                missing.append(f"{where}: `{path}` does not exist")
            elif function and not re.search(rf"^(async )?def {function}\b", target.read_text(), re.MULTILINE):
                missing.append(f"{where}: `{path}` has no test `{function}`")
        for link in LINK.findall(line):
            if "://" not in link and not link.startswith("mailto:") and not (folder / link).exists():
                missing.append(f"{where}: link to `{link}`, which does not exist")
    return missing


def test_paths_tests_and_links_in_the_docs_exist() -> None:
    missing = [
        entry
        for doc in doc_files()
        for entry in missing_in(doc.read_text(encoding="utf-8"), str(doc.relative_to(ROOT)), doc.parent)
    ]
    assert not missing, "the docs name what is not there:\n" + "\n".join(missing)


def test_a_missing_test_or_path_is_named() -> None:
    present = "`tests/faults/test_faults.py::test_worker_killed_mid_stream_then_restarted`, [x](API.md)"
    assert missing_in(present, "docs/X.md", ROOT / "docs") == []
    text = "`tests/faults/test_faults.py::test_no_such_test` and `streams/no_such.py` and [x](NOWHERE.md)"
    found = missing_in(text, "docs/X.md", ROOT / "docs")
    assert [entry.split(": ", 1)[1] for entry in found] == [
        "`tests/faults/test_faults.py` has no test `test_no_such_test`",
        "`streams/no_such.py` does not exist",
        "link to `NOWHERE.md`, which does not exist",
    ]


ANCHORED_LINK = re.compile(r"\]\(([^)\s#]*)#([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.MULTILINE)
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def anchors_of(text: str) -> set[str]:
    """The anchors GitHub gives a document's headings (lower case, punctuation dropped, spaces as dashes)."""
    headings = HEADING.findall(FENCED.sub("", text))
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def broken_anchors(text: str, name: str, folder: Path) -> list[str]:
    """Each `[...](FILE#anchor)` of a document whose FILE has no heading of that anchor."""
    broken = []
    for number, line in enumerate(text.splitlines(), 1):
        for target, anchor in ANCHORED_LINK.findall(line):
            path = (folder / target) if target else folder / Path(name).name
            if "://" in target or not path.is_file():
                continue  # a missing file is reported by the test above
            if anchor not in anchors_of(path.read_text(encoding="utf-8")):
                broken.append(f"{name}:{number}: no section #{anchor} in {target or Path(name).name}")
    return broken


def test_links_to_a_section_find_it() -> None:
    broken = [
        entry
        for doc in doc_files()
        for entry in broken_anchors(doc.read_text(encoding="utf-8"), str(doc.relative_to(ROOT)), doc.parent)
    ]
    assert not broken, "links to sections that are not there:\n" + "\n".join(broken)


def test_a_missing_section_is_named() -> None:
    docs = ROOT / "docs"
    text = "[a](OPERATIONS.md#metrics) [b](CLI.md#no-such-section) [c](#try-it)"
    assert broken_anchors(text, "docs/X.md", docs) == ["docs/X.md:1: no section #no-such-section in CLI.md"]
    assert broken_anchors("[c](#try-it)", "README.md", ROOT) == []
