"""Payloads and status codes of the destination app's inputs API (PostInputs / ListInputs)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_INPUTS_PER_REQUEST = 128


class StatusCode(IntEnum):
    """Status codes of the original API, as REFERENCE.md lists them."""

    SUCCESS = 10000
    MIXED_STATUS = 10010
    FAILURE = 10020
    CONN_THROTTLED = 11005
    CONN_INSUFFICIENT_SCOPES = 11007
    CONN_KEY_INVALID = 11008
    CONN_KEY_NOT_FOUND = 11009  # how Clarifai's API answers an unknown key
    INPUT_SUCCESS = 30000
    INPUT_PENDING = 30001
    INPUT_FAILED = 30002
    INPUT_DUPLICATE = 30100
    INPUT_DOES_NOT_EXIST = 30102
    INPUT_INVALID_ARGUMENT = 30104
    INPUT_OVER_LIMIT = 30105


class Status(BaseModel):
    code: int
    description: str = ""
    details: str = ""


class Concept(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str | None = None
    value: float = 1.0


class Image(BaseModel):
    model_config = ConfigDict(extra="allow")

    url: str | None = None
    base64: str | None = None


class Text(BaseModel):
    model_config = ConfigDict(extra="allow")

    raw: str | None = None
    url: str | None = None


class InputData(BaseModel):
    model_config = ConfigDict(extra="allow")

    image: Image | None = None
    text: Text | None = None
    concepts: list[Concept] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Input(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=255)
    data: InputData


class PostInputsRequest(BaseModel):
    inputs: list[Input]
    input_id_conflict_resolution: str = "SKIP"


class InputResult(BaseModel):
    id: str
    status: Status


class PostInputsResponse(BaseModel):
    status: Status
    inputs: list[InputResult] = Field(default_factory=list)
