"""Export the published JSON Schemas (the contract for producers in other languages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas.collectors import CollectorsDocument
from schemas.events import PredictionEvent

JSON_DIR = Path(__file__).parent / "json"
SCHEMA_FILES: dict[str, Any] = {
    "prediction-event.schema.json": PredictionEvent,
    "collectors-config.schema.json": CollectorsDocument,
}


def json_schema(model: Any) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a pydantic model."""
    schema: dict[str, Any] = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def event_schema() -> dict[str, Any]:
    """The JSON Schema of a prediction event."""
    return json_schema(PredictionEvent)
