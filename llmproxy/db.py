"""Postgres: the connection pool and the schema migrations (applied at start-up under an advisory lock)."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from llmproxy.keys import DecryptionError, KeyBox

log = logging.getLogger("llmproxy.db")

MIGRATION_LOCK = 0x6C6C6D70  # "llmp": one lock id for every replica of proxy and dispatcher

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE projects (
            id uuid PRIMARY KEY,
            name text NOT NULL UNIQUE,
            api_key text NOT NULL,
            is_active boolean NOT NULL DEFAULT true,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            deactivated_at timestamptz
        );
        CREATE TABLE tokens (
            id uuid PRIMARY KEY,
            token text NOT NULL UNIQUE,
            token_hint text NOT NULL,
            project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            expires_at timestamptz,
            is_active boolean NOT NULL DEFAULT true,
            request_count bigint NOT NULL DEFAULT 0,
            max_requests bigint,
            created_at timestamptz NOT NULL DEFAULT now(),
            last_used_at timestamptz,
            deactivated_at timestamptz,
            cache_hit_count bigint NOT NULL DEFAULT 0
        );
        CREATE INDEX tokens_project_id ON tokens (project_id);
        CREATE TABLE audit_events (
            id uuid PRIMARY KEY,
            timestamp timestamptz NOT NULL,
            action text NOT NULL,
            actor text,
            project_id uuid,
            request_id text,
            correlation_id text,
            client_ip text,
            method text,
            path text,
            user_agent text,
            outcome text NOT NULL,
            reason text,
            token_id uuid,
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb
        );
        CREATE INDEX audit_events_timestamp ON audit_events (timestamp DESC);
        CREATE INDEX audit_events_request_id ON audit_events (request_id);
        CREATE INDEX audit_events_project_id ON audit_events (project_id, timestamp DESC);
        CREATE TABLE proxy_settings (name text PRIMARY KEY, value text NOT NULL);
        """,
    ),
]


class DatabaseUnavailable(Exception):
    """Postgres did not answer within the start-up deadline."""


async def connect_pool(dsn: str, size: int, deadline: float = 30.0) -> asyncpg.Pool:
    """A pool, retrying while Postgres starts (several services may start together)."""
    give_up = time.monotonic() + deadline
    while True:
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=size,
                command_timeout=10,
                timeout=5,
                max_inactive_connection_lifetime=60,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if time.monotonic() > give_up:
                raise DatabaseUnavailable(f"cannot connect to DATABASE_URL: {exc}") from exc
            await asyncio.sleep(0.5)
            continue
        assert pool is not None
        return pool


async def migrate(pool: asyncpg.Pool) -> list[int]:
    """Apply pending migrations; concurrent callers serialise on an advisory lock. Returns what ran."""
    applied: list[int] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, sql in MIGRATIONS:
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                applied.append(version)
                log.info("applied migration %d", version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied


KEY_CHECK_NAME = "encryption_key_check"
KEY_CHECK_PLAINTEXT = "llmproxy-encryption-key-check"


async def verify_encryption_key(pool: asyncpg.Pool, box: KeyBox) -> None:
    """Fail at start-up, not on the first request, when ENCRYPTION_KEY differs from the one in use."""
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO proxy_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            KEY_CHECK_NAME,
            box.encrypt(KEY_CHECK_PLAINTEXT),
        )
        stored = await conn.fetchval("SELECT value FROM proxy_settings WHERE name = $1", KEY_CHECK_NAME)
    try:
        ok = box.decrypt(stored) == KEY_CHECK_PLAINTEXT
    except DecryptionError:
        ok = False
    if not ok:
        raise DecryptionError(
            "ENCRYPTION_KEY differs from the key this database's upstream API keys were encrypted with:"
            " restore the original ENCRYPTION_KEY"
        )
