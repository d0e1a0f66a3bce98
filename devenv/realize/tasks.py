"""From an ECS task definition to what runs locally, as the ECS agent would run the container.

Natively the container image maps to a local entry point by its repository name (IMAGE_ENTRYPOINTS),
the container's `command` following it; the docker runtime runs the image itself. `environment` is copied and `secrets` are resolved from the emulator's
Secrets Manager (whole secret or one JSON key) and SSM Parameter Store, exactly as the agent resolves
`valueFrom`. The container port gets a free host port, given to the process as LISTEN_ADDR.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devenv import stack_names as names
from devenv.errors import DevenvError
from devenv.runtime.docker import TLS_DIR, ContainerConfig, HealthCheck, container_name, labels
from devenv.runtime.state import StateDir

# Image repository name -> the local command that stands for the image's entry point.
IMAGE_ENTRYPOINTS: dict[str, list[str]] = {
    "llm-proxy": [sys.executable, "-m", "llmproxy"],
    "llmproxy": [sys.executable, "-m", "llmproxy"],
}


# The stack's ECR repository (and the image's own name) -> the image built here under that name.
LOCAL_REPOSITORIES = {names.ECR_REPOSITORY_NAME: "llmproxy", "llmproxy": "llmproxy"}


def local_image(image: str) -> str:
    """The image a task definition names, as this Docker has it: the stack's ECR image
    (`123.dkr.ecr.us-east-1.amazonaws.com/llm-proxy:local`) is the `llmproxy:local` built from
    llmproxy/; any other image (a public sidecar) is used as named."""
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    repository, _, tag = last.partition(":")
    registry = reference.rsplit("/", 1)[0] if "/" in reference else ""
    if repository in LOCAL_REPOSITORIES and (not registry or ".dkr.ecr." in registry):
        return f"{LOCAL_REPOSITORIES[repository]}:{tag or 'latest'}"
    return image


def health_from_ecs(health_check: Mapping[str, Any] | None) -> HealthCheck | None:
    """An ECS container `healthCheck` (CMD or CMD-SHELL, seconds) as a Docker health check."""
    if not health_check or not health_check.get("command"):
        return None
    kind, *rest = health_check["command"]
    if kind == "CMD-SHELL":
        test: tuple[str, ...] = ("sh", "-c", " ".join(rest))
    elif kind == "CMD":
        test = tuple(rest)
    else:
        raise ValueError(f"healthCheck command must start with CMD or CMD-SHELL, got {kind!r}")
    return HealthCheck(
        test,
        interval_s=float(health_check.get("interval", 30)),
        timeout_s=float(health_check.get("timeout", 5)),
        retries=int(health_check.get("retries", 3)),
        start_period_s=float(health_check.get("startPeriod", 0)),
    )


def task_container(
    state: StateDir,
    name: str,
    image: str,
    command: Iterable[str],
    env: Mapping[str, str],
    stop_timeout_s: float,
    health_check: Mapping[str, Any] | None = None,
) -> ContainerConfig:
    """An ECS task's essential container, for the realizer: the task definition's image (`local_image`),
    command and resolved environment. A CA file the environment names on the host (REDIS_CA_FILE) is
    copied in and the variable pointed at the copy."""
    if not image:
        raise ValueError(f"task {name}: the task definition names no image")
    env = dict(env)
    files = {}
    if "REDIS_CA_FILE" in env:
        files[f"{TLS_DIR}/ca.crt"] = Path(env["REDIS_CA_FILE"]).read_bytes()
        env["REDIS_CA_FILE"] = f"{TLS_DIR}/ca.crt"
    return ContainerConfig(
        name=name,
        image=local_image(image),
        container_name=container_name(state, name),
        command=tuple(command),
        env=env,
        files=files,
        health=health_from_ecs(health_check),
        stop_timeout_s=stop_timeout_s,
        labels=labels(state, name),
    )


class UnrealizableTask(DevenvError):
    """A task definition this runtime cannot run (say which container and why)."""


@dataclass(frozen=True)
class LocalContainer:
    """What to run for one container of a task."""

    name: str
    image: str
    command: list[str]
    env: dict[str, str]
    container_port: int | None
    stop_timeout_s: float
    essential: bool = True
    health_check: dict[str, Any] = field(default_factory=dict)


def repository_name(image: str) -> str:
    """`123.dkr.ecr.us-east-1.amazonaws.com/llm-proxy:local` -> `llm-proxy`."""
    path = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return path.split(":", 1)[0]


def resolve_value_from(value_from: str, secretsmanager: Any, ssm: Any) -> str:
    """A secret's value as the ECS agent reads it: Secrets Manager ARN[:json-key:stage:version] or SSM."""
    if ":secretsmanager:" in value_from:
        parts = value_from.split(":")
        secret_id = ":".join(parts[:7])
        json_key = parts[7] if len(parts) > 7 and parts[7] else None
        stage = parts[8] if len(parts) > 8 and parts[8] else None
        version = parts[9] if len(parts) > 9 and parts[9] else None
        kwargs: dict[str, str] = {"SecretId": secret_id}
        if stage:
            kwargs["VersionStage"] = stage
        if version:
            kwargs["VersionId"] = version
        secret: str = secretsmanager.get_secret_value(**kwargs)["SecretString"]
        if json_key is None:
            return secret
        try:
            return str(json.loads(secret)[json_key])
        except (ValueError, KeyError) as exc:
            raise UnrealizableTask(f"secret {secret_id} has no JSON key {json_key!r}") from exc
    name = value_from.split(":parameter", 1)[1] if ":parameter" in value_from else value_from
    response = ssm.get_parameter(Name=name, WithDecryption=True)
    return str(response["Parameter"]["Value"])


def native_argv(container: LocalContainer) -> list[str]:
    """The local command standing for the container's image and command."""
    entry = IMAGE_ENTRYPOINTS.get(repository_name(container.image))
    if entry is None:
        raise UnrealizableTask(
            f"container {container.name!r} runs image {container.image!r}, which has no local entry point",
            f"known image repositories: {', '.join(sorted(IMAGE_ENTRYPOINTS))} (or run images: --runtime docker)",
        )
    return [*entry, *container.command]


def local_containers(task_definition: dict[str, Any], secretsmanager: Any, ssm: Any) -> list[LocalContainer]:
    """The containers of a task definition with their environment and secrets resolved."""
    containers = []
    for container in task_definition["containerDefinitions"]:
        env = {item["name"]: item["value"] for item in container.get("environment", [])}
        for secret in container.get("secrets", []):
            env[secret["name"]] = resolve_value_from(secret["valueFrom"], secretsmanager, ssm)
        ports = [
            m["containerPort"] for m in container.get("portMappings", []) if m.get("protocol", "tcp") == "tcp"
        ]
        containers.append(
            LocalContainer(
                name=container["name"],
                image=container["image"],
                command=list(container.get("command", [])),
                env=env,
                container_port=ports[0] if ports else None,
                stop_timeout_s=float(container.get("stopTimeout", 30)),
                essential=container.get("essential", True),
                health_check=container.get("healthCheck", {}),
            )
        )
    return containers
