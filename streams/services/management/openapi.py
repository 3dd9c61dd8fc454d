"""The OpenAPI 3.1 document of the management API, its schemas generated from the pydantic models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic.json_schema import models_json_schema

from schemas.collectors import Collector, Workflow

_REF = "#/components/schemas/{model}"

_TIMESTAMPS: dict[str, Any] = {
    "created_at": {"type": "string", "description": "When it was created (ISO 8601, UTC)."},
    "modified_at": {"type": "string", "description": "When it was last changed (ISO 8601, UTC)."},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _reply(description: str, **fields: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": _json(
            {"type": "object", "required": ["status"], "properties": {"status": _ref("Status"), **fields}}
        ),
    }


_APP_PARAMETERS = [
    {"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "app_id", "in": "path", "required": True, "schema": {"type": "string"}},
]


_ERRORS = {
    "400": _reply("Invalid argument (24001) or invalid workflow (24002); `details` names the field or node."),
    "401": _reply("No, unknown or revoked key (11008)."),
    "403": _reply(
        "The caller's key is not the app owner's, or a collector's key cannot post inputs (11007); or a collector's"
        " destination is not on the allow-list (24008)."
    ),
    "413": _reply("The body is over the size limit (24009)."),
    "429": _reply("The key made too many requests (11005); retry after the seconds in the Retry-After header."),
    "502": _reply("The auth service or a collector's destination did not answer (24006); nothing was stored."),
    "503": _reply("Kafka refused the write (24007)."),
}


def _operation(operation_id: str, summary: str, responses: dict[str, Any], body: Any = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {**responses, **_ERRORS},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(body)}
    return operation


def _resource_paths(plural: str, view: str, model: str) -> dict[str, Any]:
    """The five calls of one resource (collectors or workflows)."""
    name = plural.capitalize()
    single = name[:-1]
    many = {plural: {"type": "array", "items": _ref(view)}}
    items = {"type": "array", "items": _ref(model), "minItems": 1, "maxItems": 128}
    write_body = {"type": "object", "required": [plural], "properties": {plural: items}}
    patch_body = {
        "type": "object",
        "required": ["action", plural],
        "properties": {"action": {"const": "overwrite"}, plural: items},
    }
    page = [
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
        {
            "name": "per_page",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 128},
        },
    ]
    not_found = {"404": _reply(f"No such {single.lower()} in the app (24003).")}
    return {
        f"/v2/users/{{user_id}}/apps/{{app_id}}/{plural}": {
            "parameters": _APP_PARAMETERS,
            "post": _operation(
                f"Post{name}",
                f"Create {plural}; 409 (24004) if an id exists",
                {
                    "200": _reply(f"The {plural} as stored.", **many),
                    "409": _reply(f"A {single.lower()} id exists (24004)."),
                },
                write_body,
            ),
            "get": {
                **_operation(
                    f"List{name}", f"One page of the app's {plural}, in id order", {"200": _reply("A page.", **many)}
                ),
                "parameters": page,
            },
            "patch": _operation(
                f"Patch{name}",
                f"Overwrite existing {plural} whole",
                {"200": _reply(f"The {plural} as stored.", **many), **not_found},
                patch_body,
            ),
            "delete": _operation(
                f"Delete{name}",
                f"Delete the given {plural}, or all of them",
                {
                    "200": _reply("Deleted.", deleted={"type": "array", "items": {"type": "string"}}),
                    **not_found,
                    **(
                        {"409": _reply("A collector still uses the workflow (24005).")} if plural == "workflows" else {}
                    ),
                },
                _ref("DeleteRequest"),
            ),
        },
        f"/v2/users/{{user_id}}/apps/{{app_id}}/{plural}/{{{single.lower()}_id}}": {
            "parameters": [
                *_APP_PARAMETERS,
                {"name": f"{single.lower()}_id", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "get": _operation(
                f"Get{single}",
                f"One {single.lower()}",
                {"200": _reply("Found.", **{single.lower(): _ref(view)}), **not_found},
            ),
        },
    }


def openapi_document(codes: Mapping[str, int]) -> dict[str, Any]:
    """The OpenAPI document; ``codes`` are the status codes by name."""
    _, definitions = models_json_schema([(Collector, "validation"), (Workflow, "validation")], ref_template=_REF)
    schemas: dict[str, Any] = definitions["$defs"]
    schemas["Status"] = {
        "type": "object",
        "required": ["code", "description"],
        "properties": {
            "code": {
                "type": "integer",
                "enum": sorted(codes.values()),
                "description": ", ".join(f"{v} {k}" for k, v in codes.items()),
            },
            "description": {"type": "string"},
            "details": {"type": "string", "description": "What to fix."},
        },
    }
    schemas["CollectorView"] = {
        "description": "A collector as responses show it: destination.key redacted (its first 4 characters and …).",
        "allOf": [
            _ref("Collector"),
            {
                "type": "object",
                "properties": {**_TIMESTAMPS, "last_error": {"type": ["string", "null"]}},
            },
        ],
    }
    schemas["WorkflowView"] = {"allOf": [_ref("Workflow"), {"type": "object", "properties": _TIMESTAMPS}]}
    schemas["DeleteRequest"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "delete_all": {"type": "boolean"},
        },
        "description": 'Either {"ids": [...]} or {"delete_all": true}.',
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Collectors management API",
            "version": "2",
            "description": "Collectors and workflows of an app, stored in the control topic. See docs/API.md.",
        },
        "security": [{"ApiKey": []}],
        "paths": {
            **_resource_paths("collectors", "CollectorView", "Collector"),
            **_resource_paths("workflows", "WorkflowView", "Workflow"),
            "/healthz": {
                "get": {"operationId": "Healthz", "security": [], "responses": {"200": {"description": "Serving."}}}
            },
            "/openapi.json": {
                "get": {
                    "operationId": "OpenApi",
                    "security": [],
                    "responses": {"200": {"description": "This document."}},
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "ApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Key <key>`: a key of the destination service owning the app in the path.",
                }
            },
        },
    }
