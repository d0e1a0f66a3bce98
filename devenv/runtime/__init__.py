"""How processes run: the native supervisor (here) or Docker containers (a later runtime)."""

from __future__ import annotations

from devenv.errors import UsageError


def docker_daemon_answers() -> bool:
    """True when a Docker daemon answers a ping (testcontainers uses the same client)."""
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
    """native | docker | auto -> the runtime to use; docker is not available in this version."""
    if choice in ("native", "auto"):
        return "native"  # auto would pick docker when a daemon answers, once that runtime exists
    raise UsageError(
        "the docker runtime is not available yet"
        + ("" if docker_daemon_answers() else ", and no Docker daemon answers here"),
        "use --runtime native (the default when no daemon answers) or --runtime auto",
    )
