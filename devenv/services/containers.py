"""The infrastructure services as containers (`devenv up --runtime docker`): the same ports, settings and
data as the native processes of devenv.services, from their images (runtime.docker runs them)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from devenv.config import Settings
from devenv.runtime import probes
from devenv.runtime.docker import (
    CLOUD_DATA_DIR,
    CLOUD_IMAGE,
    LLMPROXY_IMAGE,
    TLS_DIR,
    ContainerConfig,
    HealthCheck,
    container_name,
    data_volumes,
    labels,
    service,
)
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import RestartPolicy, ServiceSpec
from devenv.services import emulator, llmproxy, postgres, redis
from devenv.services.tls import TlsFiles

if TYPE_CHECKING:
    from devenv.services.assembly import Ports

# The official images (the settings' defaults); postgres_image/redis_image select others, such as the
# air-gapped stand-ins of devenv.services.images.
POSTGRES_IMAGE = f"postgres:{postgres.PINNED_MAJOR}"  # major 18 everywhere: Aurora, compose, native
REDIS_IMAGE = "redis:7"


# Where a container finds devenv's CA, server certificate and key.
CONTAINER_TLS = TlsFiles(
    ca_cert=Path(TLS_DIR, "ca.crt"),
    server_cert=Path(TLS_DIR, "server.crt"),
    server_key=Path(TLS_DIR, "server.key"),
)


def _tls_files(tls: TlsFiles, with_key: bool) -> dict[str, bytes]:
    """devenv's CA (and the server certificate and key) copied into a container under /tls."""
    files = {str(CONTAINER_TLS.ca_cert): tls.ca_cert.read_bytes()}
    if with_key:
        files[str(CONTAINER_TLS.server_cert)] = tls.server_cert.read_bytes()
        files[str(CONTAINER_TLS.server_key)] = tls.server_key.read_bytes()
    return files


def postgres_container(settings: Settings, state: StateDir, port: int) -> ContainerConfig:
    """Postgres 18 on 127.0.0.1:`port`, as the native one; its data in a named volume."""
    return ContainerConfig(
        name="postgres",
        image=settings.postgres_image,
        container_name=container_name(state, "postgres"),
        command=(
            *("postgres", "-p", str(port), "-c", "listen_addresses=127.0.0.1"),
            *("-c", "fsync=off", "-c", "max_connections=200"),
        ),
        env={"POSTGRES_USER": settings.postgres_user, "POSTGRES_PASSWORD": settings.postgres_password},
        health=HealthCheck(("pg_isready", "-h", "127.0.0.1", "-p", str(port), "-U", settings.postgres_user)),
        volumes={data_volumes(state)["postgres"]: "/var/lib/postgresql"},  # 18+: PGDATA in a folder below
        stop_timeout_s=settings.stop_timeout_s,
        labels=labels(state, "postgres"),
    )


def redis_container(
    settings: Settings, state: StateDir, port: int, tls_port: int, tls: TlsFiles
) -> ContainerConfig:
    """Redis 7, plain on `port` and TLS on `tls_port` with devenv's certificate, as the native one."""
    return ContainerConfig(
        name="redis",
        image=settings.redis_image,
        container_name=container_name(state, "redis"),
        command=(
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *redis.tls_args(CONTAINER_TLS, tls_port),
        ),
        files=_tls_files(tls, with_key=True),
        health=HealthCheck(("redis-cli", "-h", "127.0.0.1", "-p", str(port), "ping")),
        stop_timeout_s=settings.stop_timeout_s,
        labels=labels(state, "redis"),
    )


def emulator_container(
    settings: Settings, state: StateDir, port: int, env: Mapping[str, str]
) -> ContainerConfig:
    """The local cloud image running the extended emulator; its generated secrets in a named volume
    (kept across restarts, as the Postgres data they open is)."""
    return ContainerConfig(
        name="emulator",
        image=CLOUD_IMAGE,
        container_name=container_name(state, "emulator"),
        command=("--host", "127.0.0.1", "--port", str(port), "--region", settings.region),
        env={**env, "DEVENV_GENERATED_SECRETS": f"{CLOUD_DATA_DIR}/generated-secrets.json"},
        volumes={data_volumes(state)["emulator"]: CLOUD_DATA_DIR},
        stop_timeout_s=settings.stop_timeout_s,
        labels=labels(state, "emulator"),
    )


def mock_upstream_container(settings: Settings, state: StateDir, port: int) -> ContainerConfig:
    return ContainerConfig(
        name="mock-upstream",
        image=LLMPROXY_IMAGE,
        container_name=container_name(state, "mock-upstream"),
        command=("mock-upstream", *llmproxy.mock_upstream_args(settings, port)),
        stop_timeout_s=settings.stop_timeout_s,
        labels=labels(state, "mock-upstream"),
    )


def infrastructure(settings: Settings, state: StateDir, ports: Ports, tls: TlsFiles) -> list[ServiceSpec]:
    """Postgres, Redis and the emulator from their images, on the ports and with the settings of the
    native services (`devenv.services.assembly.infrastructure`)."""
    emulator_env = emulator.environment(
        settings,
        postgres.admin_url(settings, ports.postgres),
        postgres_endpoint=f"127.0.0.1:{ports.aurora or ports.postgres}",
        redis_endpoint=f"127.0.0.1:{ports.elasticache or ports.redis}",
    )
    on_failure = RestartPolicy(mode="on-failure")
    return [
        service(
            state,
            postgres_container(settings, state, ports.postgres),
            ready=probes.all_of(
                probes.tcp("127.0.0.1", ports.postgres),
                probes.command(
                    [
                        str(postgres.bin_dir(settings) / "pg_isready"),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(ports.postgres),
                        "-q",
                    ]
                ),
            ),
            ports={"postgres": ports.postgres},
            url=postgres.admin_url(settings, ports.postgres),
            ready_timeout_s=settings.ready_timeout_s,
            restart=on_failure,
        ),
        service(
            state,
            redis_container(settings, state, ports.redis, ports.redis_tls, tls),
            ready=probes.tcp_exchange("127.0.0.1", ports.redis, b"PING\r\n", b"+PONG"),
            ports={"redis": ports.redis, "tls": ports.redis_tls},
            url=f"redis://127.0.0.1:{ports.redis}/0",
            ready_timeout_s=settings.ready_timeout_s,
            restart=on_failure,
        ),
        service(
            state,
            emulator_container(settings, state, ports.emulator, emulator_env),
            ready=probes.http(f"http://127.0.0.1:{ports.emulator}/moto-api/"),
            ports={"emulator": ports.emulator},
            url=emulator.endpoint(ports.emulator),
            ready_timeout_s=settings.ready_timeout_s,
            restart=on_failure,
            depends_on=("postgres", "redis"),
        ),
    ]


def application(settings: Settings, state: StateDir, ports: Ports) -> list[ServiceSpec]:
    """The mock OpenAI upstream from the llmproxy image (the realizer runs the stack's tasks)."""
    assert ports.mock_upstream is not None
    port = ports.mock_upstream
    return [
        service(
            state,
            mock_upstream_container(settings, state, port),
            ready=probes.http(f"http://127.0.0.1:{port}/health"),
            ports={"http": port},
            url=f"http://127.0.0.1:{port}/v1",
            ready_timeout_s=settings.ready_timeout_s,
            restart=RestartPolicy(mode="on-failure"),
        )
    ]
