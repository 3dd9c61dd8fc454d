"""Post-queue operators on texts: text_check, near_duplicate (simhash), python."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, EntryPoints
from typing import Any

import pytest

from streams.core.operators import python as python_operator
from streams.core.operators.near_duplicate import distance, simhash
from streams.core.workflows import WorkflowError

from .support import candidate, compile_async, compile_one, compile_step, concept, event, node_error


def text_event(raw: str | None = None, url: str | None = None, event_id: str = "e1") -> dict[str, Any]:
    text = {"raw": raw} if raw is not None else {"url": url}
    return event([concept("ai_dog", 0.9, "dog")], data={"text": text, "metadata": {"k": 1}}, event_id=event_id)


# text_check ---------------------------------------------------------------------------------------------


def test_text_check_lengths_and_pattern() -> None:
    decide = compile_one("text_check", min_length=3, max_length=5, pattern="^[a-z]+$")
    assert decide(candidate(text_event("abc")))
    assert decide(candidate(text_event("abcde")))
    assert not decide(candidate(text_event("ab")))
    assert not decide(candidate(text_event("abcdef")))
    assert not decide(candidate(text_event("ab1")))
    assert compile_one("text_check", min_length=2)(candidate(text_event("é✓")))  # code points, not bytes


def test_text_check_pattern_is_searched_anywhere() -> None:
    assert compile_one("text_check", pattern="[0-9]{3}")(candidate(text_event("order 123 arrived")))


def test_text_check_stops_without_inline_text() -> None:
    decide = compile_one("text_check")
    assert decide(candidate(text_event("")))  # an empty text is a text of length 0
    assert not compile_one("text_check", min_length=1)(candidate(text_event("")))
    assert not decide(candidate(text_event(url="https://example.com/t.txt")))  # not fetched
    assert not decide(candidate(event([])))  # an image


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pattern": "(unclosed"}, r"field `pattern`: '\(unclosed' is not a valid regular expression: missing \)"),
        ({"min_length": 5, "max_length": 2}, "`min_length` 5 is above `max_length` 2"),
        ({"min_length": -1}, "field `min_length`"),
        ({"regex": "a"}, "field `regex`: Extra inputs"),
    ],
)
def test_text_check_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(WorkflowError, match=node_error("text_check") + f".*{message}"):
        compile_one("text_check", **params)


def test_post_queue_operators_are_refused_in_the_pre_queue_workflow() -> None:
    from schemas.collectors import Node
    from streams.core.workflows import compile_nodes

    with pytest.raises(WorkflowError, match="`text_check` runs in the post-queue workflow, not in the pre-queue one"):
        compile_nodes([Node(operator="text_check")], stage="pre", collector_id="c1", workflow_id="wf")


# near_duplicate on texts --------------------------------------------------------------------------------


def test_simhash_normalises_and_is_close_for_close_texts() -> None:
    text = "The quick brown fox jumps over the lazy dog near the river bank today"
    assert simhash(text) == simhash("THE   quick, brown fox — jumps over the lazy dog near the river bank today!")
    assert simhash("\uff46\uff4f\uff58") == simhash("fox")  # NFKC
    assert distance(simhash(text), simhash(text + " again")) < distance(simhash(text), simhash("something else"))
    assert simhash("") == simhash("!!!") == 0


async def test_near_duplicate_texts() -> None:
    decide = compile_async("near_duplicate", max_distance=3)
    state: dict[str, Any] = {}
    text = "The quick brown fox jumps over the lazy dog near the river bank on a sunny day"
    assert await decide(candidate(text_event(text), state))
    assert not await decide(candidate(text_event(text.upper() + "!!", event_id="e2"), state))
    assert await decide(candidate(text_event("Completely unrelated sentence about tax forms", event_id="e3"), state))
    assert len(state["near_duplicate|c1|text"]) == 2
    assert not await decide(candidate(text_event(url="https://example.com/t"), state))  # no inline text: stops
    assert await decide(candidate(text_event(text), state, collector="other"))  # memory is per collector


async def test_near_duplicate_passes_an_event_read_again() -> None:
    """After a crash or a rebalance an event that passed is judged again: it meets its own hash, and passes."""
    decide = compile_async("near_duplicate", max_distance=3)
    state: dict[str, Any] = {}
    text = "The quick brown fox jumps over the lazy dog near the river bank on a sunny day"
    assert await decide(candidate(text_event(text), state))
    assert await decide(candidate(text_event(text), state)), "the same event again"
    assert not await decide(candidate(text_event(text, event_id="e2"), state)), "another event, the same text"
    assert state["near_duplicate|c1|text|ids"] == ["e1"]


async def test_near_duplicate_memory_is_bounded() -> None:
    decide = compile_async("near_duplicate", max_distance=0, memory=3)
    state: dict[str, Any] = {}
    for i in range(5):
        assert await decide(candidate(text_event(f"text number {i} " * (i + 1)), state))
    remembered = state["near_duplicate|c1|text"]
    assert len(remembered) == 3
    assert remembered[-1] == f"{simhash('text number 4 ' * 5):016x}"
    assert await decide(candidate(text_event("text number 0 "), state))  # forgotten: passes again


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "max_distance"), ({"max_distance": 65}, "max_distance"), ({"max_distance": 3, "memory": 0}, "memory")],
)
def test_near_duplicate_bad_parameters(params: dict[str, object], field: str) -> None:
    with pytest.raises(WorkflowError, match=node_error("near_duplicate") + f"field `{field}`"):
        compile_step("near_duplicate", **params)


# python -------------------------------------------------------------------------------------------------


def has_dog(data: dict[str, Any], concepts: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in concepts if c.get("name") == "dog"] if data.get("metadata", {}).get("k") == 1 else []


def explodes(data: dict[str, Any], concepts: list[dict[str, Any]]) -> bool:
    raise RuntimeError("boom")


class Rules:
    @staticmethod
    def has_text(data: dict[str, Any], concepts: list[dict[str, Any]]) -> bool:
        return "text" in data


NOT_CALLABLE = 42


def test_python_passes_on_a_truthy_result() -> None:
    decide = compile_one("python", callable=f"{__name__}:has_dog")
    assert decide(candidate(text_event("hi")))
    assert not decide(candidate(event([concept("ai_cat", 0.9, "cat")], metadata={"k": 1})))
    assert compile_one("python", callable=f"{__name__}:Rules.has_text")(candidate(text_event("hi")))


def test_python_sees_the_narrowed_concepts() -> None:
    decide = compile_one("python", callable=f"{__name__}:has_dog")
    seen = candidate(text_event("hi"))
    seen.concepts = []
    assert not decide(seen)


def test_python_exception_stops_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    decide = compile_one("python", callable=f"{__name__}:explodes")
    with caplog.at_level(logging.ERROR):
        assert not decide(candidate(text_event("hi")))
    assert "explodes" in caplog.text
    assert "boom" in caplog.text


def test_python_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    point = EntryPoint(name="dogs", value=f"{__name__}:has_dog", group=python_operator.GROUP)
    monkeypatch.setattr(python_operator, "entry_points", lambda group, name: EntryPoints([point]).select(name=name))
    assert compile_one("python", callable="dogs")(candidate(text_event("hi")))
    with pytest.raises(WorkflowError, match=node_error("python") + "callable 'cats' cannot be loaded: no entry point"):
        compile_one("python", callable="cats")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:f", "callable 'no_such_module_xyz:f' cannot be loaded: No module named"),
        (f"{__name__}:missing", f"callable '{__name__}:missing' cannot be loaded: .*has no attribute 'missing'"),
        (f"{__name__}:NOT_CALLABLE", r".*:NOT_CALLABLE' is not a function \(found a int object\)"),
        ("", "field `callable`"),
    ],
)
def test_python_bad_callables_fail_the_load(spec: str, message: str) -> None:
    with pytest.raises(WorkflowError, match=node_error("python") + message):
        compile_one("python", callable=spec)
