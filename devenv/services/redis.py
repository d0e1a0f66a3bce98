"""Redis for ElastiCache: `redis-server` from PATH, a direct child, no persistence (as ElastiCache
without a snapshot: a restart comes back empty)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from devenv.config import Settings
from devenv.errors import MissingDependencyError
from devenv.runtime import probes
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import RestartPolicy, ServiceSpec

if TYPE_CHECKING:
    from devenv.services.tls import TlsFiles

INSTALL_HINT = (
    "install it: `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS)"
)


def server_binary(settings: Settings) -> str:
    found = shutil.which(settings.redis_server)
    if found is None:
        raise MissingDependencyError(
            f"redis-server not found (looked for {settings.redis_server!r})", INSTALL_HINT
        )
    return found


def tls_args(files: TlsFiles, tls_port: int) -> list[str]:
    """redis-server flags that serve TLS on `tls_port` with devenv's server certificate, without client
    certificates, as ElastiCache does with in-transit encryption (`--port 0` turns plain text off)."""
    return [
        *("--tls-port", str(tls_port)),
        *("--tls-cert-file", str(files.server_cert), "--tls-key-file", str(files.server_key)),
        *("--tls-ca-cert-file", str(files.ca_cert), "--tls-auth-clients", "no"),
    ]


def spec(
    settings: Settings, state: StateDir, port: int, tls: TlsFiles | None = None, tls_port: int = 0
) -> ServiceSpec:
    """Redis on `port`; with `tls`, also TLS on `tls_port` (as ElastiCache with in-transit encryption)."""
    data = state.data / "redis"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        server_binary(settings),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        str(data),
    ]
    ports = {"redis": port}
    if tls is not None:
        argv += tls_args(tls, tls_port)
        ports["tls"] = tls_port
    return ServiceSpec(
        name="redis",
        argv=argv,
        ports=ports,
        url=f"redis://127.0.0.1:{port}/0",
        ready=probes.tcp_exchange("127.0.0.1", port, b"PING\r\n", b"+PONG"),
        stop_timeout_s=settings.stop_timeout_s,
        ready_timeout_s=settings.ready_timeout_s,
        restart=RestartPolicy(mode="on-failure"),
    )
