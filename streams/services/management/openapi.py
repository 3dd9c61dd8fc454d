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
    "400": _reply("Invalid request (11102) or invalid workflow (22104); `details` names the field or node."),
    "401": _reply("No key (11008), or an unknown or revoked key (11009)."),
    "403": _reply(
        "The caller's key is not the app owner's, or a collector's key cannot post inputs (11007); or a collector's"
        " destination is not on the allow-list (30103)."
    ),
    "404": _reply("The auth service has no such app (11101), or no such collector (52000) or workflow (22102)."),
    "502": _reply("The auth service or a collector's destination did not answer (40034); nothing was stored."),
    "503": _reply("Kafka refused the write (98006)."),
    "413": _reply("The body is over the size limit (40033)."),
    "429": _reply("The key made too many requests (11005); retry after the seconds in the Retry-After header."),
}
_USER_APP_QUERY = [
    {
        "name": f"user_app_id.{field}",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "The app (also user_app_id in a body); default: the key's own app.",
    }
    for field in ("user_id", "app_id")
]
_NOT_FOUND = {"collectors": 52000, "workflows": 22102}
_EXISTS = {"collectors": 40010, "workflows": 22100}
_CLARIFAI_SOURCE = {
    "type": "object",
    "properties": {
        "api_post_model_outputs_collector_source": {
            "type": "object",
            "additionalProperties": False,
            "required": ["model_user_id", "model_app_id", "model_id"],
            "properties": {
                **{
                    name: {"type": "string"}
                    for name in ("model_user_id", "model_app_id", "model_id", "model_version_id", "caller_user_id")
                },
                "post_inputs_key_id": {"type": "string", "description": "The key that posts inputs (PostInputs)."},
            },
        }
    },
}
_COLLECTOR_STATUS = {
    "type": "object",
    "properties": {"code": {"enum": [52001, 52002, 52003, "COLLECTOR_ACTIVE", "COLLECTOR_INACTIVE"]}},
    "description": "52001 COLLECTOR_ACTIVE, 52002 COLLECTOR_INACTIVE, 52003 COLLECTOR_POST_INPUT_FAILED (paused by a "
    "worker whose key was refused; details holds the reason).",
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


def _resource_paths(plural: str, view: str, model: str, *, in_app: bool = True) -> dict[str, Any]:
    """The five calls of one resource (collectors or workflows), under the app's path or (``in_app`` False)
    without it: the app is then ``user_app_id``'s, or the key's own."""
    name = plural.capitalize()
    prefix = "/v2/users/{user_id}/apps/{app_id}" if in_app else "/v2"
    app_parameters = _APP_PARAMETERS if in_app else _USER_APP_QUERY
    suffix = "" if in_app else "OfUserAppId"
    single = name[:-1]
    many = {plural: {"type": "array", "items": _ref(view)}}
    item = {"oneOf": [_ref(model), _ref("ClarifaiCollector")]} if plural == "collectors" else _ref(model)
    items = {"type": "array", "items": item, "minItems": 1, "maxItems": 128}
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
    not_found = {"404": _reply(f"No such {single.lower()} in the app ({_NOT_FOUND[plural]}).")}
    exists = _EXISTS[plural]
    return {
        f"{prefix}/{plural}": {
            "parameters": app_parameters,
            "post": _operation(
                f"Post{name}{suffix}",
                f"Create {plural}; 409 ({exists}) if an id exists",
                {
                    "200": _reply(f"The {plural} as stored.", **many),
                    "409": _reply(f"A {single.lower()} id exists ({exists})."),
                },
                write_body,
            ),
            "get": {
                **_operation(
                    f"List{name}{suffix}",
                    f"One page of the app's {plural}, in id order",
                    {"200": _reply("A page.", **many)},
                ),
                "parameters": page,
            },
            "patch": _operation(
                f"Patch{name}{suffix}",
                f"Overwrite existing {plural} whole",
                {"200": _reply(f"The {plural} as stored.", **many), **not_found},
                patch_body,
            ),
            "delete": _operation(
                f"Delete{name}{suffix}",
                f"Delete the given {plural}, or all of them",
                {
                    "200": _reply("Deleted.", deleted={"type": "array", "items": {"type": "string"}}),
                    **not_found,
                    **(
                        {"409": _reply("A collector still uses the workflow (22999).")} if plural == "workflows" else {}
                    ),
                },
                _ref("DeleteRequest"),
            ),
        },
        f"{prefix}/{plural}/{{{single.lower()}_id}}": {
            "parameters": [
                *app_parameters,
                {"name": f"{single.lower()}_id", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "get": _operation(
                f"Get{single}{suffix}",
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
    schemas["ClarifaiCollector"] = {
        "description": "A collector as Clarifai spells it (accepted wherever a Collector is): the model and the "
        "post key in collector_source, status as a Status message, the destination the app of the request.",
        "type": "object",
        "required": ["id", "collector_source"],
        "properties": {
            "id": {"type": "string"},
            "description": {"type": "string"},
            "pre_queue_workflow_id": {"type": "string"},
            "pre_queue_random_sample": {"type": "number"},
            "post_queue_workflow_id": {"type": "string"},
            "collector_source": _CLARIFAI_SOURCE,
            "status": _COLLECTOR_STATUS,
            "collect_outputs": {"type": "boolean"},
        },
    }
    schemas["CollectorView"] = {
        "description": "A collector as responses show it, in Clarifai's fields (post_inputs_key_id and "
        "destination.key redacted: their first 4 characters and …) with the project's destination, modified_at "
        "and last_error.",
        "type": "object",
        "properties": {
            **schemas["ClarifaiCollector"]["properties"],
            **_TIMESTAMPS,
            "destination": _ref("Destination"),
            "last_error": {"type": ["string", "null"]},
        },
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
            **_resource_paths("collectors", "CollectorView", "Collector", in_app=False),
            **_resource_paths("workflows", "WorkflowView", "Workflow"),
            "/v2/myscopes": {
                "get": {
                    "operationId": "MyScopes",
                    "summary": "The caller's key: its user, its app (id empty for a key of all the user's apps), "
                    "its scopes.",
                    "responses": {"200": {"description": "The key's user, app and scopes."}},
                }
            },
            "/healthz": {
                "get": {"operationId": "Healthz", "security": [], "responses": {"200": {"description": "Serving."}}}
            },
            "/readyz": {
                "get": {
                    "operationId": "Readyz",
                    "security": [],
                    "responses": {
                        "200": {"description": "Ready: the control topic has been read and Kafka answers."},
                        "503": {"description": "Not ready; the body names the failing checks."},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "Metrics",
                    "security": [],
                    "responses": {"200": {"description": "Prometheus metrics (docs/OPERATIONS.md)."}},
                }
            },
            "/": {
                "get": {
                    "operationId": "FunnelPage",
                    "security": [],
                    "responses": {"200": {"description": "The live funnel page (HTML)."}},
                }
            },
            "/funnel": {
                "get": {
                    "operationId": "Funnel",
                    "description": "What the funnel page shows, as JSON. No key needed from loopback; from elsewhere"
                    " a key of the owner, and only the collectors of the apps it covers.",
                    "responses": {
                        "200": {"description": "Funnels, rates, lag per partition, dead letters by reason."},
                        "401": {"description": "A key is needed (the caller is not on loopback)."},
                        "503": {"description": "Kafka does not answer."},
                    },
                }
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
