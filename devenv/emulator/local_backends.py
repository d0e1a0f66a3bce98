"""The local servers the emulated data stores point at, given to the emulator process by environment.

- `DEVENV_POSTGRES_ADMIN_URL`: a superuser URL; a DB cluster's database and master user are created with it.
- `DEVENV_POSTGRES_ENDPOINT`: host:port advertised as the cluster endpoint (default: the admin URL's).
- `DEVENV_REDIS_ENDPOINT`: host:port advertised for ElastiCache (default 127.0.0.1:6379).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg

from devenv.emulator.models.base import TemplateError

POSTGRES_ADMIN_URL = "DEVENV_POSTGRES_ADMIN_URL"
POSTGRES_ENDPOINT = "DEVENV_POSTGRES_ENDPOINT"
REDIS_ENDPOINT = "DEVENV_REDIS_ENDPOINT"
DEFAULT_REDIS_ENDPOINT = "127.0.0.1:6379"
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, variable: str) -> Endpoint:
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit():
            raise TemplateError(f"{variable}={text!r} is not host:port")
        return cls(host, int(port))


def postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ADMIN_URL, "")
    if not url:
        raise TemplateError(
            f"no local Postgres is configured for the emulator ({POSTGRES_ADMIN_URL} is not set), so an Aurora "
            "cluster cannot be realized; start the emulator with `devenv up`, which sets it"
        )
    return url


def postgres_endpoint() -> Endpoint:
    advertised = os.environ.get(POSTGRES_ENDPOINT)
    if advertised:
        return Endpoint.parse(advertised, POSTGRES_ENDPOINT)
    parts = urlsplit(postgres_admin_url())
    return Endpoint(parts.hostname or "127.0.0.1", parts.port or 5432)


def redis_endpoint() -> Endpoint:
    return Endpoint.parse(os.environ.get(REDIS_ENDPOINT) or DEFAULT_REDIS_ENDPOINT, REDIS_ENDPOINT)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _admin_user() -> str:
    return urlsplit(postgres_admin_url()).username or "postgres"


RESERVED_DATABASES = {"postgres", "template0", "template1"}


async def _provision(username: str, password: str, database: str | None) -> None:
    connection = await asyncpg.connect(postgres_admin_url(), timeout=CONNECT_TIMEOUT_S)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", username)
        verb = "ALTER" if exists else "CREATE"
        await connection.execute(
            f"{verb} ROLE {_quote_ident(username)} LOGIN CREATEDB PASSWORD {_quote_literal(password)}"
        )
        if database and not await connection.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", database
        ):
            await connection.execute(
                f"CREATE DATABASE {_quote_ident(database)} OWNER {_quote_ident(username)}"
            )
    finally:
        await connection.close()


async def _drop(username: str, database: str | None) -> None:
    connection = await asyncpg.connect(postgres_admin_url(), timeout=CONNECT_TIMEOUT_S)
    try:
        if database and database not in RESERVED_DATABASES:
            await connection.execute(f"DROP DATABASE IF EXISTS {_quote_ident(database)} WITH (FORCE)")
        owned = await connection.fetch(
            "SELECT datname FROM pg_database d JOIN pg_roles r ON d.datdba = r.oid WHERE r.rolname = $1",
            username,
        )
        if not owned:
            await connection.execute(f"DROP ROLE IF EXISTS {_quote_ident(username)}")
    finally:
        await connection.close()


def provision_database(username: str, password: str, database: str | None) -> None:
    """Create (or re-password) the cluster's master user and its database on the local Postgres."""
    if username == _admin_user():
        raise TemplateError(
            f"the master username {username!r} is the local Postgres superuser; give the cluster another "
            "username (e.g. Credentials.fromGeneratedSecret('llmproxy'))"
        )
    try:
        asyncio.run(_provision(username, password, database))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise TemplateError(f"the local Postgres refused to create user {username!r}: {exc}") from exc


def drop_database(username: str, database: str | None) -> None:
    """Remove what `provision_database` made: the database (connections closed) and then the user."""
    try:
        asyncio.run(_drop(username, database))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise TemplateError(f"the local Postgres refused to drop user {username!r}: {exc}") from exc
