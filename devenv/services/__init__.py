"""One module per local service; `infrastructure` assembles the ones every `devenv up` runs."""

from __future__ import annotations

from typing import Any

from devenv.config import Settings
from devenv.runtime.ports import claim
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import ServiceSpec
from devenv.services import emulator, postgres, redis


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
