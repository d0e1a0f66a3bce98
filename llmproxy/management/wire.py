"""What the management API reads and writes: request bodies, query strings, answers and errors, as
pydantic models. They validate every input and are the schemas of the OpenAPI document."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

MAX_DURATION_MINUTES = 525_600


def storable(value: str) -> str:
    """Postgres text holds neither NUL nor lone surrogates: reject them as input errors."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer includes 3.0; strict mode would refuse it (and must still refuse true)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _iso_time(value: Any) -> Any:
    """ISO 8601 text only (not Unix seconds); a time without an offset is taken as UTC."""
    if not isinstance(value, str):
        return value
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 timestamp") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, StringConstraints(pattern=NO_NUL), AfterValidator(storable)]
Minutes = Annotated[int, Field(ge=1, le=MAX_DURATION_MINUTES), BeforeValidator(_whole_number)]
RequestCount = Annotated[int, Field(ge=0, le=2**62), BeforeValidator(_whole_number)]
Name = Annotated[Text, Field(min_length=1, max_length=200)]
# Sent as an HTTP header value upstream: printable ASCII only (no spaces, no CR/LF injection).
ApiKey = Annotated[str, StringConstraints(pattern=r"^[!-~]+$", min_length=1, max_length=2000)]
Url = Annotated[Text, Field(min_length=1, max_length=4096)]
Moment = Annotated[dt.datetime, BeforeValidator(_iso_time)]


class Model(BaseModel):
    """A JSON body: strict types, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """A query string: every value arrives as text and is converted; unknown names are ignored."""

    model_config = ConfigDict(extra="ignore")


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


class TokenQuery(Query):
    project_id: uuid.UUID | None = Field(default=None, alias="projectId")


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


class AuditQuery(Query):
    page: int = Field(default=1, ge=1, le=1_000_000)
    page_size: int = Field(default=20, ge=1, le=100)
    action: Text | None = None
    outcome: Text | None = None
    actor: Text | None = None
    request_id: Text | None = None
    project_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None
    since: Moment | None = Field(default=None, description="events at or after this time")
    until: Moment | None = Field(default=None, description="events before this time")


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
    """An answer other than success: its status and the Error body's fields."""

    def __init__(self, status: int, code: str, message: str, description: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.description = status, code, message, description
