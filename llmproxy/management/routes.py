"""The management API's routes, declared once: each Operation says how a request is parsed and answered,
and the OpenAPI document (openapi.py) is generated from the same table and the wire models."""

from __future__ import annotations

import functools
import hmac
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import orjson
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmproxy.management.handlers import Management
from llmproxy.management.openapi import openapi_document
from llmproxy.management.wire import (
    ApiError,
    AuditEvent,
    AuditPage,
    AuditQuery,
    CachePurge,
    Model,
    Project,
    ProjectCreate,
    ProjectUpdate,
    Purged,
    Query,
    Revoked,
    Token,
    TokenCreate,
    TokenCreated,
    TokenQuery,
    TokenUpdate,
)

DB_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, TimeoutError)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Operation:
    """One method on one path: its handler, inputs, answer and the errors it may give besides 401.

    A path with `{id}` takes a UUID there (a malformed one is 404 naming `resource`); `body` and `query`
    are the models the request is validated with (400 when it does not fit); `response` is the model
    (or list of models) answered with `status`, None for an empty answer."""

    method: str
    path: str
    handler: Callable[..., Awaitable[Any]]
    summary: str
    response: Any = None
    status: int = 200
    body: type[Model] | None = None
    query: type[Query] | None = None
    resource: str | None = None
    errors: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if ("{id}" in self.path) != (self.resource is not None):
            raise ValueError(f"{self.method} {self.path}: a path with {{id}} names its resource, no other")


OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/manage/projects", Management.list_projects, "List projects", list[Project]),
    Operation(
        "POST", "/manage/projects", Management.create_project, "Create a project", Project,
        status=201, body=ProjectCreate, errors=(400, 409),
    ),
    Operation(
        "GET", "/manage/projects/{id}", Management.get_project, "Get a project", Project,
        resource="project", errors=(404,),
    ),
    Operation(
        "PATCH", "/manage/projects/{id}", Management.update_project, "Update a project", Project,
        body=ProjectUpdate, resource="project", errors=(400, 404, 409),
    ),
    Operation(
        "POST", "/manage/projects/{id}/tokens/revoke", Management.revoke_project_tokens,
        "Revoke every token of a project", Revoked, resource="project", errors=(404,),
    ),
    Operation(
        "GET", "/manage/tokens", Management.list_tokens, "List tokens", list[Token],
        query=TokenQuery, errors=(400,),
    ),
    Operation(
        "POST", "/manage/tokens", Management.create_token, "Create a token", TokenCreated,
        status=201, body=TokenCreate, errors=(400, 403, 404),
    ),
    Operation(
        "GET", "/manage/tokens/{id}", Management.get_token, "Get a token", Token,
        resource="token", errors=(404,),
    ),
    Operation(
        "PATCH", "/manage/tokens/{id}", Management.update_token, "Update a token", Token,
        body=TokenUpdate, resource="token", errors=(400, 404),
    ),
    Operation(
        "DELETE", "/manage/tokens/{id}", Management.revoke_token, "Revoke a token",
        status=204, resource="token", errors=(404,),
    ),
    Operation(
        "GET", "/manage/audit", Management.list_audit, "List audit events, newest first", AuditPage,
        query=AuditQuery, errors=(400,),
    ),
    Operation(
        "GET", "/manage/audit/{id}", Management.get_audit, "Get an audit event", AuditEvent,
        resource="audit event", errors=(404,),
    ),
    Operation(
        "POST", "/manage/cache/purge", Management.purge_cache,
        "Purge cached responses of a method and URL (in every project)", Purged,
        body=CachePurge, errors=(400, 409, 503),
    ),
)  # fmt: skip


def json_response(content: Any, status: int = 200) -> Response:
    if isinstance(content, BaseModel):
        body = content.model_dump_json().encode()
    elif isinstance(content, list):
        body = orjson.dumps([item.model_dump(mode="json") for item in content])
    else:
        body = orjson.dumps(content)
    return Response(body, status_code=status, media_type="application/json")


def error_response(status: int, code: str, message: str, description: str | None = None) -> Response:
    payload: dict[str, Any] = {"error": message, "code": code}
    if description:
        payload["description"] = description
    return json_response(payload, status)


def validated(parse: Callable[[], M], what: str) -> M:
    """The result of `parse`, or 400 invalid_request listing every problem by field."""
    try:
        return parse()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or what}: {err['msg']}" for err in exc.errors()
        )
        raise ApiError(400, "invalid_request", f"the request {what} is invalid", problems) from None


async def inputs(operation: Operation, request: Request) -> dict[str, Any]:
    """The handler's keyword arguments, parsed in order: path id (404), query, body (400)."""
    found: dict[str, Any] = {}
    if operation.resource is not None:
        raw = request.path_params["id"]
        try:
            found["id"] = uuid.UUID(raw)
        except ValueError:
            raise ApiError(404, "not_found", f"no {operation.resource} with id {raw!r}") from None
    if (query := operation.query) is not None:
        found["query"] = validated(lambda: query.model_validate(dict(request.query_params)), "query")
    if (body := operation.body) is not None:
        raw_body = await request.body() or b"null"
        found["body"] = validated(lambda: body.model_validate_json(raw_body), "body")
    return found


def authorized(request: Request, management_token: str) -> bool:
    scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        supplied.strip().encode("utf-8", "surrogateescape"), management_token.encode()
    )


def endpoint(operation: Operation, management: Management) -> Callable[[Request], Awaitable[Response]]:
    """Authorization, inputs, the handler, its answer; ApiError and an unreachable database as errors."""
    handler = functools.partial(operation.handler, management)

    async def serve(request: Request) -> Response:
        if not authorized(request, management.management_token):
            return error_response(401, "unauthorized", "missing or wrong management token")
        try:
            result = await handler(request, **await inputs(operation, request))
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.description)
        except DB_ERRORS as exc:
            return error_response(503, "database_unavailable", f"the database cannot be reached ({exc})")
        if operation.response is None:
            return Response(status_code=operation.status)
        return json_response(result, operation.status)

    return serve


def management_app(management: Management) -> Starlette:
    """The management API as a Starlette app: OPERATIONS, plus the OpenAPI document (no token needed)."""
    document = json_response(openapi_document(OPERATIONS)).body

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        response = error_response(exc.status_code, code, exc.detail)
        response.headers.update(exc.headers or {})
        return response

    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for operation in OPERATIONS:
        by_path.setdefault(operation.path, {})[operation.method] = endpoint(operation, management)

    def route(path: str, serve: dict[str, Callable[[Request], Awaitable[Response]]]) -> Route:
        if "GET" in serve:
            serve = {**serve, "HEAD": serve["GET"]}

        async def by_method(request: Request) -> Response:
            return await serve[request.method](request)

        return Route(path, by_method, methods=list(serve))

    routes = [Route("/manage/openapi.json", openapi, methods=["GET"])]
    routes += [route(path, serve) for path, serve in by_path.items()]
    return Starlette(routes=routes, exception_handlers={HTTPException: not_found})
