"""``text_check``: keep inputs whose text is within a length range and matches a pattern.

Rules: the text is ``text.raw``; lengths count Unicode code points (inclusive bounds); ``pattern`` is a
Python regular expression searched anywhere in the text (anchor it with ``^...$`` to match the whole),
compiled when the workflow loads (a bad one fails the load). An input with no inline text stops: an
image, and a text given only by ``url`` (it is not fetched: post-queue checks judge what the event
carries, and the destination fetches the URL itself). An empty text has length 0.

Example node (post-queue)::

    {operator: text_check, min_length: 20, max_length: 5000, pattern: "[A-Za-z]{3,}"}
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streams.core.operators._inputs import input_data, raw_text
from streams.core.operators.base import Candidate, Decision, Operator


class TextCheckParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_length: int | None = Field(default=None, ge=0, description="Fewest characters accepted.")
    max_length: int | None = Field(default=None, ge=0, description="Most characters accepted.")
    pattern: str | None = Field(default=None, description="A regular expression the text must contain.")

    @model_validator(mode="after")
    def _ordered(self) -> TextCheckParams:
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise ValueError(f"`min_length` {self.min_length} is above `max_length` {self.max_length}")
        return self


def build(params: TextCheckParams) -> Decision:
    try:
        pattern = re.compile(params.pattern) if params.pattern is not None else None
    except re.error as exc:
        raise ValueError(f"field `pattern`: {params.pattern!r} is not a valid regular expression: {exc}") from None
    low = params.min_length or 0
    high = params.max_length

    def text_check(candidate: Candidate) -> bool:
        text = raw_text(input_data(candidate))
        return (
            text is not None
            and low <= len(text)
            and (high is None or len(text) <= high)
            and (pattern is None or pattern.search(text) is not None)
        )

    return text_check


OPERATOR = Operator(name="text_check", stages=("post",), params=TextCheckParams, build=build)
