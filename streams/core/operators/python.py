"""``python``: keep inputs a Python function of yours approves.

``callable`` is ``package.module:function`` (the attribute may be dotted, ``module:Class.method``), or
the name of an entry point in the group ``collectors.operators`` (declared by an installed package). It is
imported when the workflow loads; a failure there fails the load, naming the callable.

Signature: ``function(input_data: dict, concepts: list[dict]) -> object`` — the original input's data
(``image``/``text``/``metadata``) and the concepts as the workflow narrowed them. Both are shared with
other collectors: read them, never modify them. The input passes when the result is truthy (``True``, a
non-empty list or string...); ``None``, ``False``, ``0`` and empty results stop it. An exception raised
by the function stops the input and is logged with its traceback.

Example node (post-queue)::

    {operator: python, callable: "my_rules.filters:is_daylight"}
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from streams.core.operators._inputs import input_data
from streams.core.operators.base import Candidate, Decision, Operator

log = logging.getLogger(__name__)

GROUP = "collectors.operators"

UserFunction = Callable[[dict[str, Any], list[dict[str, Any]]], object]


class PythonParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callable: str = Field(min_length=1, description=f"`package.module:function`, or an entry point of {GROUP}.")


def resolve(spec: str) -> UserFunction:
    """Import the function a ``callable`` parameter names; ValueError naming it when that fails."""
    try:
        if ":" in spec:
            module_name, _, attribute = spec.partition(":")
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        else:
            found = entry_points(group=GROUP, name=spec)
            if not found:
                raise ValueError(f"no entry point of that name in group {GROUP} (or write `package.module:function`)")
            target = next(iter(found)).load()
    except Exception as exc:  # importing user code can raise anything; the load must say which callable
        raise ValueError(f"callable {spec!r} cannot be loaded: {exc}") from None
    if not callable(target):
        raise ValueError(f"callable {spec!r} is not a function (found a {type(target).__name__} object)")
    function: UserFunction = target
    return function


def build(params: PythonParams) -> Decision:
    function = resolve(params.callable)

    def python(candidate: Candidate) -> bool:
        try:
            return bool(function(input_data(candidate), candidate.concepts))
        except Exception:
            log.exception("callable %r failed on event %r: the input stops", params.callable, candidate.event_id)
            return False

    return python


OPERATOR = Operator(name="python", stages=("post",), params=PythonParams, build=build)
