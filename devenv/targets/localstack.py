"""LocalStack as an optional emulator: only the endpoint variables `cdklocal` would set, nothing more.

It needs a Docker daemon and `LOCALSTACK_AUTH_TOKEN` (since March 2026 the image refuses to start without
one), and its free tier lacks ECS, RDS, ElastiCache, ELBv2 and Application Auto Scaling, so strict parity
is not expected from it. devenv does not start LocalStack; it deploys to one that is already running.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from devenv.errors import MissingDependencyError

DEFAULT_ENDPOINT = "http://localhost:4566"
TOKEN_VARIABLE = "LOCALSTACK_AUTH_TOKEN"
ENDPOINT_VARIABLE = "LOCALSTACK_ENDPOINT"


def endpoint(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(ENDPOINT_VARIABLE) or DEFAULT_ENDPOINT


def cdklocal_env(base_endpoint: str, region: str) -> dict[str, str]:
    """The variables aws-cdk-local sets for the CDK CLI (S3 through the virtual-host name LocalStack serves)."""
    parts = urlsplit(base_endpoint)
    port = parts.port or 4566
    return {
        "AWS_ENDPOINT_URL": base_endpoint,
        "AWS_ENDPOINT_URL_S3": f"{parts.scheme}://s3.localhost.localstack.cloud:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


def docker_daemon_answers() -> bool:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return False
    return True


def require_localstack(environ: Mapping[str, str] | None = None, daemon: bool | None = None) -> None:
    """Refuse clearly when LocalStack cannot run here: no Docker daemon, or no auth token."""
    environ = os.environ if environ is None else environ
    problems = []
    if not (docker_daemon_answers() if daemon is None else daemon):
        problems.append("no Docker daemon answers")
    if not environ.get(TOKEN_VARIABLE):
        problems.append(f"{TOKEN_VARIABLE} is not set (the LocalStack image exits without it)")
    if problems:
        raise MissingDependencyError(
            "LocalStack cannot be used: " + "; ".join(problems),
            f"start Docker, export {TOKEN_VARIABLE} and run LocalStack, or use the built-in emulator "
            "(--emulator moto, the default)",
        )
