"""The LLM Proxy's own processes as native services: proxy (on :8080) and dispatcher.

They get the seed's environment (MANAGEMENT_TOKEN, DATABASE_URL, REDIS_CACHE_URL, REDIS_EVENT_URL,
LOG_LEVEL, ENCRYPTION_KEY, OPENAI_API_URL). The secrets are generated once per state dir and kept
in `run/secrets.json` (0600).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from typing import Any

import asyncpg
import redis as redis_lib

from devenv.config import Settings
from devenv.runtime import probes
from devenv.runtime.probes import Probe, ProbeResult
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import RestartPolicy, ServiceSpec

DATABASE = "llmproxy"
EVENT_STREAM = "llm-proxy-events"
CONSUMER_GROUP = "llm-proxy-dispatchers"


def local_secrets(state: StateDir) -> dict[str, str]:
    """MANAGEMENT_TOKEN and ENCRYPTION_KEY for the local stack, generated on first use."""
    path = state.run / "secrets.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    values = {"MANAGEMENT_TOKEN": secrets.token_urlsafe(32), "ENCRYPTION_KEY": secrets.token_urlsafe(32)}
    state.ensure()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    return values


def ensure_database(admin_url: str, name: str) -> None:
    """CREATE DATABASE name, unless it exists (as Aurora creates the cluster's default database)."""

    async def create() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())


def database_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def consumer_group_ready(redis_url: str, stream: str, group: str) -> Probe:
    """Passes once the dispatcher reads the stream through its consumer group."""

    def check() -> ProbeResult:
        try:
            client = redis_lib.Redis.from_url(redis_url, socket_timeout=0.5)
            try:
                groups = client.xinfo_groups(stream)
            finally:
                client.close()
        except redis_lib.RedisError as exc:
            return ProbeResult(False, f"consumer group {group}: {exc}")
        for info in groups:
            if info["name"] in (group, group.encode()) and info["consumers"] > 0:
                return ProbeResult(True, f"consumer group {group} has {info['consumers']} consumer(s)")
        return ProbeResult(False, f"no consumer in group {group} yet")

    return check


def environment(
    settings: Settings, state: StateDir, admin_url: str, redis_url: str, upstream_url: str
) -> dict[str, str]:
    return {
        **os.environ,
        **local_secrets(state),
        "DATABASE_URL": database_url(admin_url, DATABASE),
        "REDIS_CACHE_URL": redis_url,
        "REDIS_EVENT_URL": redis_url,
        "OPENAI_API_URL": upstream_url,
        "LOG_LEVEL": "info",
    }


def mock_upstream_spec(settings: Settings, port: int) -> ServiceSpec:
    return ServiceSpec(
        name="mock-upstream",
        argv=[sys.executable, "-m", "llmproxy", "mock-upstream", "--host", "127.0.0.1", "--port", str(port)],
        ports={"http": port},
        url=f"http://127.0.0.1:{port}/v1",
        ready=probes.http(f"http://127.0.0.1:{port}/health"),
        ready_timeout_s=settings.ready_timeout_s,
        stop_timeout_s=settings.stop_timeout_s,
        restart=RestartPolicy(mode="on-failure"),
    )


def proxy_spec(settings: Settings, env: dict[str, str], admin_url: str, port: int) -> ServiceSpec:
    return ServiceSpec(
        name="proxy",
        argv=[sys.executable, "-m", "llmproxy", "proxy"],
        env={**env, "LISTEN_ADDR": f"127.0.0.1:{port}"},
        ports={"http": port},
        url=f"http://localhost:{port}",
        prepare=lambda: ensure_database(admin_url, DATABASE),
        ready=probes.http(f"http://127.0.0.1:{port}/health"),
        depends_on=("postgres", "redis", "mock-upstream"),
        ready_timeout_s=settings.ready_timeout_s,
        stop_timeout_s=settings.stop_timeout_s,
        restart=RestartPolicy(mode="on-failure"),
    )


def dispatcher_spec(settings: Settings, env: dict[str, str], redis_url: str) -> ServiceSpec:
    return ServiceSpec(
        name="dispatcher",
        argv=[sys.executable, "-m", "llmproxy", "dispatcher"],
        env=env,
        ready=consumer_group_ready(redis_url, EVENT_STREAM, CONSUMER_GROUP),
        depends_on=("proxy",),  # the proxy applies the migrations the dispatcher writes through
        ready_timeout_s=settings.ready_timeout_s,
        stop_timeout_s=settings.stop_timeout_s,
        restart=RestartPolicy(mode="on-failure"),
    )


def management(state: StateDir) -> dict[str, Any]:
    """Where the running proxy's management API is, and its token (for `devenv token create`)."""
    snapshot = state.read()
    proxy = snapshot.get("services", {}).get("proxy")
    return {"url": proxy.get("url") if proxy else None, "token": local_secrets(state)["MANAGEMENT_TOKEN"]}
