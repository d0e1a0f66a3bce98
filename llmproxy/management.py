"""The management API (/manage/*): projects, tokens, audit log, cache purge. Bearer MANAGEMENT_TOKEN.

Bodies are validated by the pydantic models below, which also generate the OpenAPI document served at
/manage/openapi.json. Every change is audited through the event bus as its own action.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import asyncpg
import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmproxy.auth import TokenValidator
from llmproxy.events import EventPublisher, new_event
from llmproxy.httpcache import HttpCache
from llmproxy.keys import KeyBox, hash_token, new_token, obfuscate, token_hint, uuid7

MAX_DURATION_MINUTES = 525_600
DB_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, TimeoutError)


def _storable(value: str) -> str:
    """Postgres text holds neither NUL nor lone surrogates: reject them as input errors."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, StringConstraints(pattern=NO_NUL), AfterValidator(_storable)]


M = TypeVar("M", bound=BaseModel)


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer includes 3.0; strict mode would refuse it (and must still refuse true)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Minutes = Annotated[int, Field(ge=1, le=MAX_DURATION_MINUTES), BeforeValidator(_whole_number)]
RequestCount = Annotated[int, Field(ge=0, le=2**62), BeforeValidator(_whole_number)]
Name = Annotated[Text, Field(min_length=1, max_length=200)]
# Sent as an HTTP header value upstream: printable ASCII only (no spaces, no CR/LF injection).
ApiKey = Annotated[str, StringConstraints(pattern=r"^[!-~]+$", min_length=1, max_length=2000)]
Url = Annotated[Text, Field(min_length=1, max_length=4096)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ProjectCreate(Model):
    name: Name
    api_key: ApiKey = Field(description="the upstream API key (stored encrypted)")


class ProjectUpdate(Model):
    name: Name | None = None
    api_key: ApiKey | None = None
    is_active: bool | None = None
    revoke_tokens: bool | None = Field(default=None, description="also deactivate every token of the project")


class Project(Model):
    id: uuid.UUID
    name: str
    api_key: str = Field(description="obfuscated")
    is_active: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    deactivated_at: dt.datetime | None


class TokenCreate(Model):
    project_id: uuid.UUID
    duration_minutes: Minutes
    max_requests: RequestCount | None = Field(default=None, description="0 or null: unlimited")


class TokenCreated(Model):
    id: uuid.UUID
    token: str
    project_id: uuid.UUID
    expires_at: dt.datetime
    max_requests: int | None


class TokenUpdate(Model):
    is_active: bool | None = None
    max_requests: RequestCount | None = Field(default=None, description="0: unlimited")
    duration_minutes: Minutes | None = Field(default=None, description="new expiry, counted from now")


class Token(Model):
    id: uuid.UUID
    project_id: uuid.UUID
    token_hint: str
    expires_at: dt.datetime | None
    is_active: bool
    request_count: int
    max_requests: int | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    deactivated_at: dt.datetime | None
    cache_hit_count: int


class Revoked(Model):
    revoked: int


class AuditEvent(Model):
    id: uuid.UUID
    timestamp: dt.datetime
    action: str
    actor: str | None
    project_id: uuid.UUID | None
    request_id: str | None
    correlation_id: str | None
    client_ip: str | None
    method: str | None
    path: str | None
    user_agent: str | None
    outcome: str
    reason: str | None
    token_id: uuid.UUID | None
    metadata: dict[str, Any]


class Pagination(Model):
    page: int
    page_size: int
    total: int
    total_pages: int


class AuditPage(Model):
    events: list[AuditEvent]
    pagination: Pagination


class CachePurge(Model):
    method: Literal["GET", "HEAD", "POST"]
    url: Url = Field(description="path and query, e.g. /v1/models")
    prefix: Url | None = Field(default=None, description="purge every URL under it")


class Purged(Model):
    deleted: int


class Error(Model):
    error: str
    code: str
    description: str | None = None


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, description: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.description = status, code, message, description


def json_response(content: Any, status: int = 200) -> Response:
    body = content.model_dump_json().encode() if isinstance(content, BaseModel) else orjson.dumps(content)
    return Response(body, status_code=status, media_type="application/json")


def error_response(status: int, code: str, message: str, description: str | None = None) -> Response:
    payload: dict[str, Any] = {"error": message, "code": code}
    if description:
        payload["description"] = description
    return json_response(payload, status)


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
        )
        raise ApiError(400, "invalid_request", "the request body is invalid", problems) from None


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(404, "not_found", f"no {what} with id {value!r}") from None


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_request", f"query parameter {name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_request", f"query parameter {name} must be between {low} and {high}")
    return value


def query_uuid(request: Request, name: str) -> uuid.UUID | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(400, "invalid_request", f"query parameter {name} must be a UUID") from None


def query_time(request: Request, name: str) -> dt.datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(
            400, "invalid_request", f"query parameter {name} must be an ISO 8601 timestamp"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def query_text(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return _storable(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", f"query parameter {name} {exc}") from None


PROJECT_COLUMNS = "id, name, api_key, is_active, created_at, updated_at, deactivated_at"
TOKEN_COLUMNS = (
    "id, project_id, token_hint, expires_at, is_active, request_count, max_requests, created_at,"
    " last_used_at, deactivated_at, cache_hit_count"
)
AUDIT_COLUMNS = (
    "id, timestamp, action, actor, project_id, request_id, correlation_id, client_ip, method, path,"
    " user_agent, outcome, reason, token_id, metadata"
)


@dataclass
class Management:
    """Handlers of the management API; `app()` wires them into a Starlette application."""

    pool: asyncpg.Pool
    box: KeyBox
    management_token: str
    validator: TokenValidator
    publisher: EventPublisher
    cache: HttpCache | None

    def _project(self, row: asyncpg.Record) -> Project:
        try:
            shown = obfuscate(self.box.decrypt(row["api_key"]))
        except Exception:
            shown = "(undecryptable)"
        return Project(**{**dict(row), "api_key": shown})

    def _audit(self, request: Request, action: str, **fields: Any) -> None:
        client = request.client
        self.publisher.publish(
            new_event(
                action,
                "success",
                actor="management",
                request_id=request.headers.get("x-request-id") or uuid.uuid4().hex,
                client_ip=client.host if client else None,
                method=request.method,
                path=request.url.path,
                user_agent=request.headers.get("user-agent"),
                **fields,
            )
        )

    async def list_projects(self, request: Request) -> Response:
        rows = await self.pool.fetch(f"SELECT {PROJECT_COLUMNS} FROM projects ORDER BY created_at, id")
        return json_response([self._project(r).model_dump(mode="json") for r in rows])

    async def create_project(self, request: Request) -> Response:
        body = await parse_body(request, ProjectCreate)
        try:
            row = await self.pool.fetchrow(
                f"INSERT INTO projects (id, name, api_key) VALUES ($1, $2, $3) RETURNING {PROJECT_COLUMNS}",
                uuid7(),
                body.name,
                self.box.encrypt(body.api_key),
            )
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "conflict", f"a project named {body.name!r} already exists") from None
        assert row is not None
        self._audit(request, "project.create", project_id=str(row["id"]), metadata={"name": body.name})
        return json_response(self._project(row), 201)

    async def get_project(self, request: Request) -> Response:
        project_id = parse_uuid(request.path_params["id"], "project")
        row = await self.pool.fetchrow(f"SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1", project_id)
        if row is None:
            raise ApiError(404, "not_found", f"no project with id {project_id}")
        return json_response(self._project(row))

    async def update_project(self, request: Request) -> Response:
        project_id = parse_uuid(request.path_params["id"], "project")
        body = await parse_body(request, ProjectUpdate)
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                row = await conn.fetchrow(
                    f"""UPDATE projects SET name = coalesce($2, name), api_key = coalesce($3, api_key),
                        is_active = coalesce($4, is_active), updated_at = now(),
                        deactivated_at = CASE WHEN $4 = false AND is_active THEN now()
                                              WHEN $4 = true THEN NULL ELSE deactivated_at END
                        WHERE id = $1 RETURNING {PROJECT_COLUMNS}""",
                    project_id,
                    body.name,
                    self.box.encrypt(body.api_key) if body.api_key is not None else None,
                    body.is_active,
                )
            except asyncpg.UniqueViolationError:
                raise ApiError(409, "conflict", f"a project named {body.name!r} already exists") from None
            if row is None:
                raise ApiError(404, "not_found", f"no project with id {project_id}")
            revoked = await self._revoke_project_tokens(conn, project_id) if body.revoke_tokens else 0
        self.validator.forget_all()
        changed = sorted(k for k, v in body.model_dump(exclude={"api_key"}).items() if v is not None)
        if body.api_key is not None:
            changed.append("api_key")
        self._audit(
            request,
            "project.update",
            project_id=str(project_id),
            metadata={"changed": changed, "revoked_tokens": revoked},
        )
        return json_response(self._project(row))

    async def _revoke_project_tokens(self, conn: asyncpg.Connection, project_id: uuid.UUID) -> int:
        result = await conn.execute(
            "UPDATE tokens SET is_active = false, deactivated_at = now() WHERE project_id = $1 AND is_active",
            project_id,
        )
        return int(result.split()[-1])

    async def revoke_project_tokens(self, request: Request) -> Response:
        project_id = parse_uuid(request.path_params["id"], "project")
        async with self.pool.acquire() as conn:
            if await conn.fetchval("SELECT 1 FROM projects WHERE id = $1", project_id) is None:
                raise ApiError(404, "not_found", f"no project with id {project_id}")
            revoked = await self._revoke_project_tokens(conn, project_id)
        self.validator.forget_all()
        self._audit(
            request, "project.tokens_revoke", project_id=str(project_id), metadata={"revoked": revoked}
        )
        return json_response(Revoked(revoked=revoked))

    async def create_token(self, request: Request) -> Response:
        body = await parse_body(request, TokenCreate)
        active = await self.pool.fetchval("SELECT is_active FROM projects WHERE id = $1", body.project_id)
        if active is None:
            raise ApiError(404, "not_found", f"no project with id {body.project_id}")
        if not active:
            raise ApiError(403, "project_inactive", "the project is inactive: reactivate it first")
        token = new_token()
        token_id = uuid7()
        max_requests = body.max_requests or None
        expires_at = await self.pool.fetchval(
            """INSERT INTO tokens (id, token, token_hint, project_id, expires_at, max_requests)
               VALUES ($1, $2, $3, $4, now() + make_interval(mins => $5), $6) RETURNING expires_at""",
            token_id,
            hash_token(token),
            token_hint(token),
            body.project_id,
            body.duration_minutes,
            max_requests,
        )
        self._audit(
            request,
            "token.create",
            project_id=str(body.project_id),
            token_id=str(token_id),
            metadata={"duration_minutes": body.duration_minutes, "max_requests": max_requests},
        )
        created = TokenCreated(
            id=token_id,
            token=token,
            project_id=body.project_id,
            expires_at=expires_at,
            max_requests=max_requests,
        )
        return json_response(created, 201)

    async def list_tokens(self, request: Request) -> Response:
        project_id = query_uuid(request, "projectId")
        if project_id is None:
            rows = await self.pool.fetch(f"SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id")
        else:
            rows = await self.pool.fetch(
                f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE project_id = $1 ORDER BY created_at, id",
                project_id,
            )
        return json_response([Token(**dict(r)).model_dump(mode="json") for r in rows])

    async def get_token(self, request: Request) -> Response:
        token_id = parse_uuid(request.path_params["id"], "token")
        row = await self.pool.fetchrow(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1", token_id)
        if row is None:
            raise ApiError(404, "not_found", f"no token with id {token_id}")
        return json_response(Token(**dict(row)))

    async def update_token(self, request: Request) -> Response:
        token_id = parse_uuid(request.path_params["id"], "token")
        body = await parse_body(request, TokenUpdate)
        max_requests_set = "max_requests" in body.model_fields_set
        row = await self.pool.fetchrow(
            f"""UPDATE tokens SET is_active = coalesce($2, is_active),
                max_requests = CASE WHEN $3 THEN nullif($4::bigint, 0) ELSE max_requests END,
                expires_at = CASE WHEN $5::int IS NULL THEN expires_at
                                  ELSE now() + make_interval(mins => $5) END,
                deactivated_at = CASE WHEN $2 = false AND is_active THEN now()
                                      WHEN $2 = true THEN NULL ELSE deactivated_at END
                WHERE id = $1 RETURNING {TOKEN_COLUMNS}""",
            token_id,
            body.is_active,
            max_requests_set,
            body.max_requests,
            body.duration_minutes,
        )
        if row is None:
            raise ApiError(404, "not_found", f"no token with id {token_id}")
        self.validator.forget_all()
        self._audit(
            request,
            "token.update",
            project_id=str(row["project_id"]),
            token_id=str(token_id),
            metadata=body.model_dump(exclude_unset=True),
        )
        return json_response(Token(**dict(row)))

    async def revoke_token(self, request: Request) -> Response:
        token_id = parse_uuid(request.path_params["id"], "token")
        project_id = await self.pool.fetchval(
            """UPDATE tokens SET is_active = false, deactivated_at = coalesce(deactivated_at, now())
               WHERE id = $1 RETURNING project_id""",
            token_id,
        )
        if project_id is None:
            raise ApiError(404, "not_found", f"no token with id {token_id}")
        self.validator.forget_all()
        self._audit(request, "token.revoke", project_id=str(project_id), token_id=str(token_id))
        return Response(status_code=204)

    async def list_audit(self, request: Request) -> Response:
        page = query_int(request, "page", 1, 1, 1_000_000)
        page_size = query_int(request, "page_size", 20, 1, 100)
        clauses: list[str] = []
        args: list[Any] = []
        filters: list[tuple[str, Any]] = [
            ("action", query_text(request, "action")),
            ("outcome", query_text(request, "outcome")),
            ("actor", query_text(request, "actor")),
            ("request_id", query_text(request, "request_id")),
            ("project_id", query_uuid(request, "project_id")),
            ("token_id", query_uuid(request, "token_id")),
        ]
        for column, value in filters:
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        for column, op in (("since", ">="), ("until", "<")):
            moment = query_time(request, column)
            if moment is not None:
                args.append(moment)
                clauses.append(f"timestamp {op} ${len(args)}")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        total = await self.pool.fetchval(f"SELECT count(*) FROM audit_events {where}", *args)
        rows = await self.pool.fetch(
            f"SELECT {AUDIT_COLUMNS} FROM audit_events {where} ORDER BY timestamp DESC, id"
            f" LIMIT {page_size} OFFSET {(page - 1) * page_size}",
            *args,
        )
        result = AuditPage(
            events=[_audit_event(r) for r in rows],
            pagination=Pagination(
                page=page, page_size=page_size, total=total, total_pages=math.ceil(total / page_size)
            ),
        )
        return json_response(result)

    async def get_audit(self, request: Request) -> Response:
        event_id = parse_uuid(request.path_params["id"], "audit event")
        row = await self.pool.fetchrow(f"SELECT {AUDIT_COLUMNS} FROM audit_events WHERE id = $1", event_id)
        if row is None:
            raise ApiError(404, "not_found", f"no audit event with id {event_id}")
        return json_response(_audit_event(row))

    async def purge_cache(self, request: Request) -> Response:
        body = await parse_body(request, CachePurge)
        if self.cache is None:
            raise ApiError(409, "cache_disabled", "the HTTP cache is disabled (HTTP_CACHE_ENABLED=false)")
        target = _path_and_query(body.url)
        try:
            deleted = await self.cache.purge(
                body.method, target, body.prefix and _path_and_query(body.prefix)
            )
        except (OSError, ConnectionError, TimeoutError) as exc:
            raise ApiError(503, "redis_unavailable", f"the cache cannot be reached ({exc})") from None
        self._audit(
            request, "cache.purge", metadata={"method": body.method, "url": target, "deleted": deleted}
        )
        return json_response(Purged(deleted=deleted))

    def app(self) -> Starlette:
        def guarded(
            handler: Callable[[Request], Awaitable[Response]],
        ) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                if not self._authorized(request):
                    return error_response(401, "unauthorized", "missing or wrong management token")
                try:
                    return await handler(request)
                except ApiError as exc:
                    return error_response(exc.status, exc.code, exc.message, exc.description)
                except DB_ERRORS as exc:
                    return error_response(
                        503, "database_unavailable", f"the database cannot be reached ({exc})"
                    )

            return endpoint

        async def openapi(request: Request) -> Response:
            return json_response(openapi_document())

        async def not_found(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
            response = error_response(exc.status_code, code, exc.detail)
            response.headers.update(exc.headers or {})
            return response

        table: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {
            "/manage/projects": {"GET": self.list_projects, "POST": self.create_project},
            "/manage/projects/{id}": {"GET": self.get_project, "PATCH": self.update_project},
            "/manage/projects/{id}/tokens/revoke": {"POST": self.revoke_project_tokens},
            "/manage/tokens": {"GET": self.list_tokens, "POST": self.create_token},
            "/manage/tokens/{id}": {
                "GET": self.get_token,
                "PATCH": self.update_token,
                "DELETE": self.revoke_token,
            },
            "/manage/audit": {"GET": self.list_audit},
            "/manage/audit/{id}": {"GET": self.get_audit},
            "/manage/cache/purge": {"POST": self.purge_cache},
        }

        def by_method(handlers: dict[str, Callable[[Request], Awaitable[Response]]]) -> Callable[..., Any]:
            guarded_handlers = {method: guarded(handler) for method, handler in handlers.items()}
            if "GET" in guarded_handlers:
                guarded_handlers["HEAD"] = guarded_handlers["GET"]

            async def endpoint(request: Request) -> Response:
                return await guarded_handlers[request.method](request)

            return endpoint

        routes = [Route("/manage/openapi.json", openapi, methods=["GET"])]
        routes += [
            Route(path, by_method(handlers), methods=list(handlers)) for path, handlers in table.items()
        ]
        return Starlette(routes=routes, exception_handlers={HTTPException: not_found})

    def _authorized(self, request: Request) -> bool:
        scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            supplied.strip().encode("utf-8", "surrogateescape"), self.management_token.encode()
        )


def _audit_event(row: asyncpg.Record) -> AuditEvent:
    values = dict(row)
    metadata = values["metadata"]
    values["metadata"] = orjson.loads(metadata) if isinstance(metadata, str) else metadata or {}
    return AuditEvent(**values)


def _path_and_query(url: str) -> str:
    """Accept a full URL or a path; the cache is keyed by path and query."""
    if "://" in url:
        rest = url.split("://", 1)[1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"
    return url


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 from the pydantic models (used by clients and by the schemathesis test)."""
    from pydantic.json_schema import models_json_schema

    models: list[type[BaseModel]] = [
        ProjectCreate,
        ProjectUpdate,
        Project,
        TokenCreate,
        TokenCreated,
        TokenUpdate,
        Token,
        Revoked,
        AuditEvent,
        AuditPage,
        CachePurge,
        Purged,
        Error,
    ]
    _, top = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schemas = top.get("$defs", {})

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    def body(name: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": ref(name)}}}

    def ok(status: str, schema: dict[str, Any] | None, *errors: str) -> dict[str, Any]:
        responses: dict[str, Any] = {"401": _error_ref("missing or wrong management token")}
        if schema is None:
            responses[status] = {"description": "done"}
        else:
            responses[status] = {"description": "ok", "content": {"application/json": {"schema": schema}}}
        for code in errors:
            responses[code] = _error_ref(_ERROR_TEXT[code])
        return responses

    def op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"summary": summary, "responses": responses, **extra}

    id_param = [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    ]

    def query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema}

    audit_params = [
        query("page", {"type": "integer", "minimum": 1, "maximum": 1_000_000}),
        query("page_size", {"type": "integer", "minimum": 1, "maximum": 100}),
        query("action", {"type": "string", "pattern": NO_NUL}),
        query("outcome", {"type": "string", "pattern": NO_NUL}),
        query("actor", {"type": "string", "pattern": NO_NUL}),
        query("request_id", {"type": "string", "pattern": NO_NUL}),
        query("project_id", {"type": "string", "format": "uuid"}),
        query("token_id", {"type": "string", "format": "uuid"}),
        query("since", {"type": "string", "format": "date-time"}),
        query("until", {"type": "string", "format": "date-time"}),
    ]
    paths = {
        "/manage/projects": {
            "get": op("List projects", ok("200", {"type": "array", "items": ref("Project")})),
            "post": op(
                "Create a project", ok("201", ref("Project"), "400", "409"), requestBody=body("ProjectCreate")
            ),
        },
        "/manage/projects/{id}": {
            "parameters": id_param,
            "get": op("Get a project", ok("200", ref("Project"), "404")),
            "patch": op(
                "Update a project",
                ok("200", ref("Project"), "400", "404", "409"),
                requestBody=body("ProjectUpdate"),
            ),
        },
        "/manage/projects/{id}/tokens/revoke": {
            "parameters": id_param,
            "post": op("Revoke every token of a project", ok("200", ref("Revoked"), "404")),
        },
        "/manage/tokens": {
            "get": op(
                "List tokens",
                ok("200", {"type": "array", "items": ref("Token")}, "400"),
                parameters=[query("projectId", {"type": "string", "format": "uuid"})],
            ),
            "post": op(
                "Create a token",
                ok("201", ref("TokenCreated"), "400", "403", "404"),
                requestBody=body("TokenCreate"),
            ),
        },
        "/manage/tokens/{id}": {
            "parameters": id_param,
            "get": op("Get a token", ok("200", ref("Token"), "404")),
            "patch": op(
                "Update a token", ok("200", ref("Token"), "400", "404"), requestBody=body("TokenUpdate")
            ),
            "delete": op("Revoke a token", ok("204", None, "404")),
        },
        "/manage/audit": {
            "get": op(
                "List audit events, newest first", ok("200", ref("AuditPage"), "400"), parameters=audit_params
            )
        },
        "/manage/audit/{id}": {
            "parameters": id_param,
            "get": op("Get an audit event", ok("200", ref("AuditEvent"), "404")),
        },
        "/manage/cache/purge": {
            "post": op(
                "Purge cached responses of a method and URL (in every project)",
                ok("200", ref("Purged"), "400", "409", "503"),
                requestBody=body("CachePurge"),
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "LLM Proxy management API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"management": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"management": []}],
    }


_ERROR_TEXT = {
    "400": "invalid input",
    "403": "forbidden in the current state",
    "404": "not found",
    "409": "conflict",
    "503": "a dependency is unavailable",
}


def _error_ref(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
