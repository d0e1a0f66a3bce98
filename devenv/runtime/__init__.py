"""How processes run: the native supervisor, or Docker containers (`devenv.runtime.docker`)."""

from __future__ import annotations

import os
from pathlib import Path

from devenv.errors import UsageError

DEFAULT_DOCKER_SOCKET = Path("/var/run/docker.sock")  # where the Docker client looks without DOCKER_HOST


def docker_daemon_answers() -> bool:
    """True when a Docker daemon answers a ping (testcontainers uses the same client). Without DOCKER_HOST
    and without the default socket, no client could reach one: said without importing the client (half
    a second of every `devenv up`)."""
    if "DOCKER_HOST" not in os.environ and not DEFAULT_DOCKER_SOCKET.exists():
        return False
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (DockerException, OSError):
        return False


def resolve_runtime(choice: str) -> str:
    """native | docker | auto -> the runtime to use: auto is docker only when a daemon answers."""
    if choice == "native":
        return "native"
    if docker_daemon_answers():
        return "docker"
    if choice == "auto":
        return "native"
    raise UsageError(
        "no Docker daemon answers, and --runtime docker needs one",
        "start Docker (Docker Desktop, `sudo systemctl start docker`, or point DOCKER_HOST at a daemon), "
        "or use --runtime native (or auto, which picks native when no daemon answers)",
    )
