"""The prediction-event contract as msgspec Structs: the worker's fast validator (about 3 µs an event).

The published contract is the JSON Schema exported from :mod:`schemas.events`; these Structs state the same
rules, and ``tests/test_contract.py`` checks on generated events that both accept and reject the same ones.
Unknown fields are ignored here (and kept in the event dict the worker uses).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import Meta, Struct

NonEmpty = Annotated[str, Meta(min_length=1)]
Probability = Annotated[float, Meta(ge=0.0, le=1.0)]


class Concept(Struct):
    id: NonEmpty
    value: Probability
    name: str | None = None


class RegionData(Struct):
    concepts: list[Concept] = []


class Region(Struct):
    id: str | None = None
    region_info: dict[str, Any] | None = None
    data: RegionData | None = None


class OutputData(Struct):
    concepts: list[Concept] = []
    regions: list[Region] = []


class Image(Struct):
    url: NonEmpty | None = None
    base64: NonEmpty | None = None


class Text(Struct):
    raw: str | None = None
    url: NonEmpty | None = None


class InputData(Struct):
    image: Image | None = None
    text: Text | None = None
    metadata: dict[str, Any] = {}


class PredictedInput(Struct):
    data: InputData
    id: str | None = None


class ModelVersion(Struct):
    id: NonEmpty


class Model(Struct):
    id: NonEmpty
    user_id: NonEmpty
    app_id: NonEmpty
    model_version: ModelVersion | None = None


class Output(Struct):
    model: Model
    input: PredictedInput
    data: OutputData | None = None


class Caller(Struct):
    user_id: NonEmpty


class PredictionEvent(Struct):
    id: Annotated[str, Meta(min_length=1, max_length=255)]
    output: Output
    created_at: datetime | None = None
    caller: Caller | None = None
