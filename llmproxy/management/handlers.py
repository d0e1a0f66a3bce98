"""What each management operation does: SQL, encryption, token caches and audit events. Inputs arrive
parsed and validated (routes.py); a handler returns its answer as a wire model or raises ApiError."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from starlette.requests import Request

from llmproxy.auth import TokenValidator
from llmproxy.events import EventPublisher, new_event
from llmproxy.httpcache import HttpCache
from llmproxy.keys import KeyBox, hash_token, new_token, obfuscate, token_hint, uuid7
from llmproxy.management.wire import (
    ApiError,
    AuditEvent,
    AuditPage,
    AuditQuery,
    CachePurge,
    Pagination,
    Project,
    ProjectCreate,
    ProjectUpdate,
    Purged,
    Revoked,
    Token,
    TokenCreate,
    TokenCreated,
    TokenQuery,
    TokenUpdate,
)

PROJECT_COLUMNS = "id, name, api_key, is_active, created_at, updated_at, deactivated_at"
TOKEN_COLUMNS = (
    "id, project_id, token_hint, expires_at, is_active, request_count, max_requests, created_at,"
    " last_used_at, deactivated_at, cache_hit_count"
)
AUDIT_COLUMNS = (
    "id, timestamp, action, actor, project_id, request_id, correlation_id, client_ip, method, path,"
    " user_agent, outcome, reason, token_id, metadata"
)
AUDIT_FILTERS = ("action", "outcome", "actor", "request_id", "project_id", "token_id")


@dataclass
class Management:
    """The management API's handlers and what they need; routes.py serves them."""

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

    async def list_projects(self, request: Request) -> list[Project]:
        rows = await self.pool.fetch(f"SELECT {PROJECT_COLUMNS} FROM projects ORDER BY created_at, id")
        return [self._project(r) for r in rows]

    async def create_project(self, request: Request, body: ProjectCreate) -> Project:
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
        return self._project(row)

    async def get_project(self, request: Request, id: uuid.UUID) -> Project:
        row = await self.pool.fetchrow(f"SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1", id)
        if row is None:
            raise ApiError(404, "not_found", f"no project with id {id}")
        return self._project(row)

    async def update_project(self, request: Request, id: uuid.UUID, body: ProjectUpdate) -> Project:
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                row = await conn.fetchrow(
                    f"""UPDATE projects SET name = coalesce($2, name), api_key = coalesce($3, api_key),
                        is_active = coalesce($4, is_active), updated_at = now(),
                        deactivated_at = CASE WHEN $4 = false AND is_active THEN now()
                                              WHEN $4 = true THEN NULL ELSE deactivated_at END
                        WHERE id = $1 RETURNING {PROJECT_COLUMNS}""",
                    id,
                    body.name,
                    self.box.encrypt(body.api_key) if body.api_key is not None else None,
                    body.is_active,
                )
            except asyncpg.UniqueViolationError:
                raise ApiError(409, "conflict", f"a project named {body.name!r} already exists") from None
            if row is None:
                raise ApiError(404, "not_found", f"no project with id {id}")
            revoked = await self._revoke_project_tokens(conn, id) if body.revoke_tokens else 0
        self.validator.forget_all()
        changed = sorted(k for k, v in body.model_dump(exclude={"api_key"}).items() if v is not None)
        if body.api_key is not None:
            changed.append("api_key")
        self._audit(
            request,
            "project.update",
            project_id=str(id),
            metadata={"changed": changed, "revoked_tokens": revoked},
        )
        return self._project(row)

    async def _revoke_project_tokens(self, conn: asyncpg.Connection, project_id: uuid.UUID) -> int:
        result = await conn.execute(
            "UPDATE tokens SET is_active = false, deactivated_at = now() WHERE project_id = $1 AND is_active",
            project_id,
        )
        return int(result.split()[-1])

    async def revoke_project_tokens(self, request: Request, id: uuid.UUID) -> Revoked:
        async with self.pool.acquire() as conn:
            if await conn.fetchval("SELECT 1 FROM projects WHERE id = $1", id) is None:
                raise ApiError(404, "not_found", f"no project with id {id}")
            revoked = await self._revoke_project_tokens(conn, id)
        self.validator.forget_all()
        self._audit(request, "project.tokens_revoke", project_id=str(id), metadata={"revoked": revoked})
        return Revoked(revoked=revoked)

    async def create_token(self, request: Request, body: TokenCreate) -> TokenCreated:
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
        return TokenCreated(
            id=token_id,
            token=token,
            project_id=body.project_id,
            expires_at=expires_at,
            max_requests=max_requests,
        )

    async def list_tokens(self, request: Request, query: TokenQuery) -> list[Token]:
        if query.project_id is None:
            rows = await self.pool.fetch(f"SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id")
        else:
            rows = await self.pool.fetch(
                f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE project_id = $1 ORDER BY created_at, id",
                query.project_id,
            )
        return [Token(**dict(r)) for r in rows]

    async def get_token(self, request: Request, id: uuid.UUID) -> Token:
        row = await self.pool.fetchrow(f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1", id)
        if row is None:
            raise ApiError(404, "not_found", f"no token with id {id}")
        return Token(**dict(row))

    async def update_token(self, request: Request, id: uuid.UUID, body: TokenUpdate) -> Token:
        max_requests_set = "max_requests" in body.model_fields_set
        row = await self.pool.fetchrow(
            f"""UPDATE tokens SET is_active = coalesce($2, is_active),
                max_requests = CASE WHEN $3 THEN nullif($4::bigint, 0) ELSE max_requests END,
                expires_at = CASE WHEN $5::int IS NULL THEN expires_at
                                  ELSE now() + make_interval(mins => $5) END,
                deactivated_at = CASE WHEN $2 = false AND is_active THEN now()
                                      WHEN $2 = true THEN NULL ELSE deactivated_at END
                WHERE id = $1 RETURNING {TOKEN_COLUMNS}""",
            id,
            body.is_active,
            max_requests_set,
            body.max_requests,
            body.duration_minutes,
        )
        if row is None:
            raise ApiError(404, "not_found", f"no token with id {id}")
        self.validator.forget_all()
        self._audit(
            request,
            "token.update",
            project_id=str(row["project_id"]),
            token_id=str(id),
            metadata=body.model_dump(exclude_unset=True),
        )
        return Token(**dict(row))

    async def revoke_token(self, request: Request, id: uuid.UUID) -> None:
        project_id = await self.pool.fetchval(
            """UPDATE tokens SET is_active = false, deactivated_at = coalesce(deactivated_at, now())
               WHERE id = $1 RETURNING project_id""",
            id,
        )
        if project_id is None:
            raise ApiError(404, "not_found", f"no token with id {id}")
        self.validator.forget_all()
        self._audit(request, "token.revoke", project_id=str(project_id), token_id=str(id))

    async def list_audit(self, request: Request, query: AuditQuery) -> AuditPage:
        clauses: list[str] = []
        args: list[Any] = []
        for column in AUDIT_FILTERS:
            value = getattr(query, column)
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        for moment, op in ((query.since, ">="), (query.until, "<")):
            if moment is not None:
                args.append(moment)
                clauses.append(f"timestamp {op} ${len(args)}")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        total = await self.pool.fetchval(f"SELECT count(*) FROM audit_events {where}", *args)
        rows = await self.pool.fetch(
            f"SELECT {AUDIT_COLUMNS} FROM audit_events {where} ORDER BY timestamp DESC, id"
            f" LIMIT {query.page_size} OFFSET {(query.page - 1) * query.page_size}",
            *args,
        )
        return AuditPage(
            events=[_audit_event(r) for r in rows],
            pagination=Pagination(
                page=query.page,
                page_size=query.page_size,
                total=total,
                total_pages=math.ceil(total / query.page_size),
            ),
        )

    async def get_audit(self, request: Request, id: uuid.UUID) -> AuditEvent:
        row = await self.pool.fetchrow(f"SELECT {AUDIT_COLUMNS} FROM audit_events WHERE id = $1", id)
        if row is None:
            raise ApiError(404, "not_found", f"no audit event with id {id}")
        return _audit_event(row)

    async def purge_cache(self, request: Request, body: CachePurge) -> Purged:
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
        return Purged(deleted=deleted)


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
