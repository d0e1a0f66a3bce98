"""What `devenv up` starts (the services of this package), on ports claimed before anything starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devenv.config import Settings
from devenv.runtime.ports import claim, free_port
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import ServiceSpec
from devenv.services import dashboard, emulator, llmproxy, postgres, redis
from devenv.services.tls import TlsFiles, ensure_tls_files


@dataclass(frozen=True)
class Ports:
    """Every port `up` uses, claimed before anything starts (a busy one fails `up` at once)."""

    postgres: int
    redis: int
    redis_tls: int
    emulator: int
    mock_upstream: int | None = None
    alb: int | None = None
    alb_https: int | None = None
    aurora: int | None = None
    elasticache: int | None = None
    dashboard: int | None = None


def claim_ports(settings: Settings, infra_only: bool) -> Ports:
    def take(service: str, setting: str) -> int:
        return claim(service, setting, getattr(settings, setting), settings.auto_ports)

    infra = {
        "postgres": take("postgres", "postgres_port"),
        "redis": take("redis", "redis_port"),
        "redis_tls": free_port(),
        "emulator": take("emulator", "emulator_port"),
    }
    if infra_only:
        return Ports(**infra)
    return Ports(
        **infra,
        mock_upstream=take("mock-upstream", "mock_upstream_port"),
        alb=take("the ALB mirror", "alb_port"),
        alb_https=take("the ALB mirror (HTTPS)", "alb_https_port"),
        aurora=take("the Aurora endpoint", "aurora_port"),
        elasticache=take("the ElastiCache endpoint", "elasticache_port"),
        dashboard=take("the dashboard", "dashboard_port"),
    )


def tls_files(state: StateDir) -> TlsFiles:
    """devenv's CA and localhost certificate (Redis serves TLS with them, tasks trust the CA)."""
    return ensure_tls_files(state.run / "tls")


def infrastructure(
    settings: Settings, state: StateDir, ports: Ports, runtime: str = "native"
) -> list[ServiceSpec]:
    """Postgres (for Aurora), Redis (for ElastiCache; plain and TLS) and the AWS emulator, as local
    processes or (runtime docker) as containers of their images."""
    state.ensure()
    if runtime == "docker":
        from devenv.services import containers

        return containers.infrastructure(settings, state, ports, tls_files(state))
    admin_url = postgres.admin_url(settings, ports.postgres)
    return [
        postgres.spec(settings, state, ports.postgres),
        redis.spec(settings, state, ports.redis, tls_files(state), ports.redis_tls),
        emulator.spec(
            settings,
            ports.emulator,
            admin_url,
            postgres_endpoint=f"127.0.0.1:{ports.aurora or ports.postgres}",
            redis_endpoint=f"127.0.0.1:{ports.elasticache or ports.redis}",
            generated_secrets=state.run / "generated-secrets.json",
            saved_cloud=emulator.saved_cloud_file(state),
        ),
    ]


def application(
    settings: Settings, state: StateDir, ports: Ports, runtime: str = "native"
) -> list[ServiceSpec]:
    """What the stack needs beside AWS: the mock OpenAI upstream (the stack's local upstreamUrl)."""
    assert ports.mock_upstream is not None
    if runtime == "docker":
        from devenv.services import containers

        return containers.application(settings, state, ports)
    return [llmproxy.mock_upstream_spec(settings, ports.mock_upstream)]


def pages(settings: Settings, state: StateDir, ports: Ports) -> list[ServiceSpec]:
    """The stack's dashboard page: a native process with either runtime (devenv.services.dashboard)."""
    assert ports.dashboard is not None
    return [dashboard.spec(settings, state, ports.dashboard)]


def facts(settings: Settings, state: StateDir, ports: Ports, runtime: str = "native") -> dict[str, Any]:
    """What `status` shows beside the services: region, credentials, the SDK env, the state dir, and the
    time scale the local cloud applies (so a compressed clock is never a silent difference)."""
    return {
        "region": settings.region,
        "time_scale": settings.time_scale,
        "credentials": dict(emulator.CREDENTIALS),
        "aws_env": emulator.sdk_env(settings, ports.emulator),
        "state_dir": str(state.root),
        "runtime": runtime,
    }
