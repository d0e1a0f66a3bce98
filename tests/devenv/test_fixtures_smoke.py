"""The shared fixtures give a real Postgres that refuses a wrong password, and a real Redis."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import redis as redis_lib


def test_postgres_accepts_the_superuser_and_refuses_a_wrong_password(postgres_dsn: str) -> None:
    async def scenario() -> None:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            assert (await conn.fetchval("SHOW server_version")).startswith("18")
        finally:
            await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(postgres_dsn.replace(":devenv@", ":wrong@"))

    asyncio.run(scenario())


def test_redis_answers(redis_url: str) -> None:
    client = redis_lib.Redis.from_url(redis_url)
    client.set("fixture-smoke", "1")
    assert client.get("fixture-smoke") == b"1"
    client.delete("fixture-smoke")
