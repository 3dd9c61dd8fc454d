"""The prediction event: one predicted input, with the model's output, as published on Kafka.

Producers in any language follow the JSON Schema exported from these models
(``schemas/json/prediction-event.schema.json``). Unknown fields are kept, never rejected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

_OPEN = ConfigDict(extra="allow")


def _one_of_present(fields: dict[str, str]) -> JsonDict:
    """JSON Schema for "at least one of these fields is present and not null"."""
    return {"anyOf": [{"required": [name], "properties": {name: {"type": kind}}} for name, kind in fields.items()]}


class Image(BaseModel):
    """An image given inline (``base64``) or by address (``url``)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra=_one_of_present({"url": "string", "base64": "string"}),
    )

    url: str | None = Field(default=None, min_length=1)
    base64: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> Image:
        if self.url is None and self.base64 is None:
            raise ValueError("image needs `url` or `base64`")
        return self


class Text(BaseModel):
    """A text given inline (``raw``) or by address (``url``)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra=_one_of_present({"raw": "string", "url": "string"}),
    )

    raw: str | None = None
    url: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> Text:
        if self.raw is None and self.url is None:
            raise ValueError("text needs `raw` or `url`")
        return self


class InputData(BaseModel):
    """The original input's data: an image or a text, and free-form metadata."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra=_one_of_present({"image": "object", "text": "object"}),
    )

    image: Image | None = None
    text: Text | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_content(self) -> InputData:
        if self.image is None and self.text is None:
            raise ValueError("input data needs `image` or `text`")
        return self


class PredictedInput(BaseModel):
    model_config = _OPEN

    id: str | None = None
    data: InputData


class Concept(BaseModel):
    """A concept the model predicted, with its probability in [0, 1]."""

    model_config = _OPEN

    id: str = Field(min_length=1)
    name: str | None = None
    value: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)


class RegionData(BaseModel):
    model_config = _OPEN

    concepts: list[Concept] = Field(default_factory=list)


class Region(BaseModel):
    """A detected region (bounding box, mask...) with its own concepts."""

    model_config = _OPEN

    id: str | None = None
    region_info: dict[str, Any] | None = None
    data: RegionData = Field(default_factory=RegionData)


class OutputData(BaseModel):
    model_config = _OPEN

    concepts: list[Concept] = Field(default_factory=list)
    regions: list[Region] = Field(default_factory=list)


class ModelVersion(BaseModel):
    model_config = _OPEN

    id: str = Field(min_length=1)


class Model(BaseModel):
    """The model that made the prediction; public models live under user ``clarifai``, app ``main``."""

    model_config = _OPEN

    id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    app_id: str = Field(min_length=1)
    model_version: ModelVersion | None = None


class Output(BaseModel):
    """One Output as the original service's PostModelOutputs returned it."""

    model_config = _OPEN

    model: Model
    input: PredictedInput
    data: OutputData = Field(default_factory=OutputData)


class Caller(BaseModel):
    model_config = _OPEN

    user_id: str = Field(min_length=1)


class PredictionEvent(BaseModel):
    """One event per predicted input on the predictions topic."""

    model_config = ConfigDict(
        extra="allow",
        title="PredictionEvent",
        json_schema_extra={
            "$id": "https://collectors.dev/schemas/prediction-event.schema.json",
            "examples": [
                {
                    "id": "evt-000001",
                    "created_at": "2026-11-27T10:00:00Z",
                    "caller": {"user_id": "bob"},
                    "output": {
                        "model": {
                            "id": "general-image-recognition",
                            "user_id": "clarifai",
                            "app_id": "main",
                            "model_version": {"id": "aa7f35c01e0642fda5cf400f543e7c40"},
                        },
                        "input": {
                            "id": "in-1",
                            "data": {
                                "image": {"url": "https://example.com/1.jpg"},
                                "metadata": {"camera": "north-gate"},
                            },
                        },
                        "data": {"concepts": [{"id": "ai_dog", "name": "dog", "value": 0.93}]},
                    },
                }
            ],
        },
    )

    id: str = Field(min_length=1, max_length=255, description="Unique id of the prediction event.")
    created_at: datetime | None = Field(default=None, description="When the prediction was made (RFC 3339).")
    caller: Caller | None = None
    output: Output
