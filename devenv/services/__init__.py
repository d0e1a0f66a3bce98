"""One module per local service; `infrastructure` assembles the ones every `devenv up` runs."""

from __future__ import annotations

from typing import Any

from devenv.config import Settings
from devenv.runtime.ports import claim
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import ServiceSpec
from devenv.services import emulator, llmproxy, postgres, redis


def infrastructure(settings: Settings, state: StateDir) -> list[ServiceSpec]:
    """Postgres (for Aurora), Redis (for ElastiCache) and the AWS emulator, on their claimed ports."""
    pg_port = claim("postgres", "postgres_port", settings.postgres_port, settings.auto_ports)
    redis_port = claim("redis", "redis_port", settings.redis_port, settings.auto_ports)
    emulator_port = claim("emulator", "emulator_port", settings.emulator_port, settings.auto_ports)
    return [
        postgres.spec(settings, state, pg_port),
        redis.spec(settings, state, redis_port),
        emulator.spec(settings, emulator_port, postgres.admin_url(settings, pg_port), redis_port),
    ]


def application(settings: Settings, state: StateDir, infra: list[ServiceSpec]) -> list[ServiceSpec]:
    """The mock upstream, the proxy and the dispatcher, wired to the infrastructure's Postgres and Redis."""
    by_name = {spec.name: spec for spec in infra}
    admin_url = by_name["postgres"].url or ""
    redis_url = by_name["redis"].url or ""
    upstream_port = claim(
        "mock-upstream", "mock_upstream_port", settings.mock_upstream_port, settings.auto_ports
    )
    proxy_port = claim("proxy", "proxy_port", settings.proxy_port, settings.auto_ports)
    env = llmproxy.environment(settings, state, admin_url, redis_url, f"http://127.0.0.1:{upstream_port}/v1")
    return [
        llmproxy.mock_upstream_spec(settings, upstream_port),
        llmproxy.proxy_spec(settings, env, admin_url, proxy_port),
        llmproxy.dispatcher_spec(settings, env, redis_url),
    ]


def facts(settings: Settings, state: StateDir, specs: list[ServiceSpec]) -> dict[str, Any]:
    """What `status` shows beside the services: region, credentials, the SDK env, the state dir."""
    emulator_port = next(s.ports["emulator"] for s in specs if s.name == "emulator")
    return {
        "region": settings.region,
        "credentials": dict(emulator.CREDENTIALS),
        "aws_env": emulator.sdk_env(settings, emulator_port),
        "state_dir": str(state.root),
        "runtime": "native",
    }
