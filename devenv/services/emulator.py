"""The AWS emulator: devenv's extended moto server (devenv.emulator) as a child process on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from devenv.config import Settings
from devenv.runtime import probes
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import RestartPolicy, ServiceSpec

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def saved_cloud_file(state: StateDir) -> Path:
    """The saved local cloud (devenv.emulator.saved_cloud): in the data directory, beside the Postgres
    data it matches, so `down --volumes` deletes both."""
    return state.data / "saved-cloud.pickle"


def endpoint(port: int) -> str:
    return f"http://localhost:{port}"


def sdk_env(settings: Settings, port: int) -> dict[str, str]:
    """The variables that point an AWS SDK or CLI at the emulator (AWS_DEFAULT_REGION: AWS CLI v1 and
    older SDKs read only that one)."""
    return {
        "AWS_ENDPOINT_URL": endpoint(port),
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        **CREDENTIALS,
    }


def environment(
    settings: Settings,
    postgres_admin_url: str,
    postgres_endpoint: str,
    redis_endpoint: str,
) -> dict[str, str]:
    """The emulator's variables: DB clusters and caches it creates advertise the given endpoints (host:port)."""
    return {
        **CREDENTIALS,
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        "DEVENV_POSTGRES_ADMIN_URL": postgres_admin_url,
        "DEVENV_POSTGRES_ENDPOINT": postgres_endpoint,
        "DEVENV_REDIS_ENDPOINT": redis_endpoint,
        "DEVENV_TIME_SCALE": repr(settings.time_scale),  # the emulator's alarms and scaling read it
    }


def spec(
    settings: Settings,
    port: int,
    postgres_admin_url: str,
    postgres_endpoint: str,
    redis_endpoint: str,
    generated_secrets: Path,
    saved_cloud: Path,
) -> ServiceSpec:
    """The emulator as a local process (`environment` says what the arguments mean)."""
    env = {
        **os.environ,
        **environment(settings, postgres_admin_url, postgres_endpoint, redis_endpoint),
        "DEVENV_GENERATED_SECRETS": str(generated_secrets),  # kept across restarts, as the local data is
        "DEVENV_SAVED_CLOUD": str(saved_cloud),  # restored on start, saved while up and at a stop
    }
    return ServiceSpec(
        name="emulator",
        argv=[
            sys.executable,
            "-m",
            "devenv.emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--region",
            settings.region,
        ],
        env=env,
        ports={"emulator": port},
        url=endpoint(port),
        ready=probes.http(f"http://127.0.0.1:{port}/moto-api/"),
        stop_timeout_s=settings.stop_timeout_s,
        ready_timeout_s=settings.ready_timeout_s,
        restart=RestartPolicy(mode="on-failure"),
    )
