"""The server's OpenAPI description, with what its routes really take and give.

The routes read their JSON bodies themselves (to bound their size and nesting before parsing), so FastAPI
cannot see the request models; they are declared here, with the statuses and error shape a client gets,
and `/metrics` as the Prometheus text it is. API tools and fuzzers (schemathesis) read this.
"""

from __future__ import annotations

from typing import Any

from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from gptoss_hub.server.chat_completions import ChatCompletionRequest
from gptoss_hub.server.responses import ResponsesRequest

__all__ = ["openapi_schema"]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": ["string", "null"]},
                "param": {"type": ["string", "null"]},
            },
        }
    },
}
_ERROR_STATUSES = {
    "400": "Invalid request (the message says which field and why)",
    "401": "Missing or wrong API key",
    "404": "Unknown model or stored response",
    "413": "Body too large",
    "429": "Too many requests in progress",
}
_BODIES: dict[str, type[BaseModel]] = {
    "/v1/chat/completions": ChatCompletionRequest,
    "/v1/responses": ResponsesRequest,
}


def openapi_schema(app: Any, model_names: list[str]) -> dict[str, Any]:
    """The app's OpenAPI document (made once, then kept on the app, as FastAPI does); `model` takes one of
    `model_names`, the names the served model answers to."""
    if app.openapi_schema:
        schema: dict[str, Any] = app.openapi_schema
        return schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = _ERROR
    for path, model in _BODIES.items():
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        body["properties"]["model"]["enum"] = model_names
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
        operation = schema["paths"][path]["post"]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
        responses: dict[str, Any] = {
            "200": {"description": "The completion (JSON), or server-sent events when streamed"}
        }
        error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for status, description in _ERROR_STATUSES.items():
            responses[status] = {"description": description, **error}
        operation["responses"] = responses
    metrics = schema["paths"]["/metrics"]["get"]
    metrics["responses"] = {
        "200": {
            "description": "Prometheus text exposition",
            "content": {"text/plain; version=0.0.4; charset=utf-8": {"schema": {"type": "string"}}},
        }
    }
    app.openapi_schema = schema
    return schema
