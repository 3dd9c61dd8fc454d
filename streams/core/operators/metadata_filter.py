"""``metadata_filter``: keep events whose input metadata matches every entry of ``match``.

Each key of ``match`` is a dotted path into ``input.data.metadata`` (``camera.site`` reads
``metadata["camera"]["site"]``; paths walk through objects only, not lists). Its value is either a plain
value, matched by equality (``true`` never equals ``1``), or a condition: a mapping whose keys are all
among

* ``in: [v, ...]`` — equal to one of the values;
* ``gte: x`` / ``lte: y`` — within the bounds (either or both; numbers with numbers, strings, e.g.
  RFC 3339 dates, with strings; a value of another type does not match);
* ``exists: true|false`` — the path is present (even with ``null``) or absent;
* ``ne: v`` — present and not equal to ``v``.

A condition with several keys needs all of them. A missing path matches only ``{exists: false}``.
Empty metadata: every path is missing. A mapping that mixes condition keys with other keys is refused
at load; a mapping with no condition key is a plain value compared by equality.

Example node::

    {operator: metadata_filter, match: {camera.site: north-gate, score: {gte: 0.2, lte: 0.9},
                                        tier: {in: [gold, silver]}, test: {exists: false}}}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from streams.core.operators.base import Candidate, Decision, Operator

_MISSING = object()
_METADATA = ("output", "input", "data", "metadata")
CONDITION_KEYS = frozenset({"in", "gte", "lte", "exists", "ne"})

Test = Callable[[Any], bool]
"""A compiled entry: judges the value at its path (``_MISSING`` when absent)."""


class MetadataFilterParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    match: dict[str, Any] = Field(
        min_length=1, description="Dotted metadata path → value, or condition {in, gte, lte, exists, ne}."
    )

    @field_validator("match")
    @classmethod
    def _compiles(cls, match: dict[str, Any]) -> dict[str, Any]:
        try:
            compile_match(match)
        except ValueError as exc:
            raise PydanticCustomError("metadata_match", "{reason}", {"reason": str(exc)}) from None
        return match


def same(a: object, b: object) -> bool:
    """JSON equality: booleans equal only booleans (``true != 1``), numbers compare by value."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _comparable(value: object) -> str | None:
    """The kind of value bounds compare: ``number``, ``string`` or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else None


def _condition(path: str, spec: Mapping[str, Any]) -> Test:
    tests: list[Test] = []
    if "exists" in spec:
        wanted = spec["exists"]
        if not isinstance(wanted, bool):
            raise ValueError(f"{path}: `exists` takes true or false, got {wanted!r}")
        if not wanted:
            if len(spec) > 1:
                raise ValueError(f"{path}: `exists: false` cannot be combined with other conditions")
            return lambda value: value is _MISSING
    if "in" in spec:
        options = spec["in"]
        if not isinstance(options, list):
            raise ValueError(f"{path}: `in` takes a list of values, got {options!r}")
        tests.append(lambda value: any(same(value, option) for option in options))
    if "ne" in spec:
        unwanted = spec["ne"]
        tests.append(lambda value: not same(value, unwanted))
    if "gte" in spec or "lte" in spec:
        tests.append(_bounds(path, spec.get("gte"), spec.get("lte")))
    return lambda value: value is not _MISSING and all(test(value) for test in tests)


def _bounds(path: str, low: Any, high: Any) -> Test:
    kinds = {_comparable(bound) for bound in (low, high) if bound is not None}
    if None in kinds or len(kinds) > 1:
        raise ValueError(f"{path}: `gte` and `lte` take numbers, or strings, of one kind")
    if low is not None and high is not None and low > high:
        raise ValueError(f"{path}: `gte` {low!r} is above `lte` {high!r}: nothing can match")
    kind = kinds.pop()

    def within(value: Any) -> bool:
        return _comparable(value) == kind and (low is None or value >= low) and (high is None or value <= high)

    return within


def compile_entry(path: str, spec: object) -> tuple[tuple[str, ...], Test]:
    """One ``match`` entry as (path parts, test); ValueError says what is wrong with it."""
    parts = tuple(path.split("."))
    if not all(parts):
        raise ValueError(f"{path!r}: a path is dot-separated keys, none of them empty")
    if isinstance(spec, dict) and spec and CONDITION_KEYS.intersection(spec):
        others = set(spec) - CONDITION_KEYS
        if others:
            raise ValueError(
                f"{path}: {sorted(others)} mixed with conditions {sorted(CONDITION_KEYS.intersection(spec))}; "
                f"a condition only has keys among {sorted(CONDITION_KEYS)}"
            )
        return parts, _condition(path, spec)
    return parts, lambda value: value is not _MISSING and same(value, spec)


def compile_match(match: Mapping[str, Any]) -> list[tuple[tuple[str, ...], Test]]:
    return [compile_entry(path, spec) for path, spec in match.items()]


def resolve(metadata: object, parts: tuple[str, ...]) -> object:
    """The value at a dotted path, or ``_MISSING``."""
    value = metadata
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def build(params: MetadataFilterParams) -> Decision:
    entries = compile_match(params.match)

    def metadata_filter(candidate: Candidate) -> bool:
        metadata = resolve(candidate.event, _METADATA)
        return all(test(resolve(metadata, parts)) for parts, test in entries)

    return metadata_filter


OPERATOR = Operator(name="metadata_filter", stages=("pre",), params=MetadataFilterParams, build=build)
