"""The management API's OpenAPI 3.1 document, generated from the route table (routes.OPERATIONS) and the
wire models' JSON schemas, so that the document cannot drift from what the routes do. Clients and the
schemathesis test read it at /manage/openapi.json."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from llmproxy.management.wire import Error

if TYPE_CHECKING:
    from llmproxy.management.routes import Operation

REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "invalid input",
    401: "missing or wrong management token",
    403: "forbidden in the current state",
    404: "not found",
    409: "conflict",
    503: "a dependency is unavailable",
}
ID_PARAMETER = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": REF.format(model=model.__name__)}


def listed_model(response: Any) -> type[BaseModel]:
    """The model of an answer that is a model or a list of them."""
    return typing.get_args(response)[0] if typing.get_origin(response) is list else response


def response_schema(response: Any) -> dict[str, Any]:
    if typing.get_origin(response) is list:
        return {"type": "array", "items": ref(listed_model(response))}
    return ref(response)


def error_response(status: int) -> dict[str, Any]:
    return {"description": ERROR_TEXT[status], "content": {"application/json": {"schema": ref(Error)}}}


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One query parameter per field (by its alias), its schema without the null of an optional field."""
    schema = model.model_json_schema(by_alias=True)
    parameters = []
    for name, field in schema["properties"].items():
        field = dict(field)
        field.pop("title", None)
        if field.get("default", "") is None:  # an absent parameter, not a null one
            del field["default"]
        description = field.pop("description", None)
        options = [s for s in field.pop("anyOf", []) if s != {"type": "null"}]
        if len(options) == 1:
            field.update(options[0])
        parameter = {"name": name, "in": "query", "required": name in schema.get("required", ())}
        parameters.append(
            {**parameter, **({"description": description} if description else {}), "schema": field}
        )
    return parameters


def operation_object(operation: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {"401": error_response(401)}
    if operation.response is None:
        responses[str(operation.status)] = {"description": "done"}
    else:
        content = {"application/json": {"schema": response_schema(operation.response)}}
        responses[str(operation.status)] = {"description": "ok", "content": content}
    for status in operation.errors:
        responses[str(status)] = error_response(status)
    described: dict[str, Any] = {"summary": operation.summary, "responses": responses}
    if operation.query is not None:
        described["parameters"] = query_parameters(operation.query)
    if operation.body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(operation.body)}},
        }
    return described


def openapi_document(operations: Sequence[Operation]) -> dict[str, Any]:
    """OpenAPI 3.1: a path per route, the schemas of every body and answer (and Error) as components."""
    models: list[type[BaseModel]] = []
    for operation in operations:
        for model in (operation.body, operation.response and listed_model(operation.response)):
            if model is not None and model not in models:
                models.append(model)
    models.append(Error)
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        item = paths.setdefault(operation.path, {})
        if operation.resource is not None:
            item["parameters"] = [ID_PARAMETER]
        item[operation.method.lower()] = operation_object(operation)
    return {
        "openapi": "3.1.0",
        "info": {"title": "LLM Proxy management API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {"management": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"management": []}],
    }
