"""From an ECS task definition to what runs locally, as the ECS agent would run the container.

Natively the container image maps to a local entry point by its repository name (IMAGE_ENTRYPOINTS),
the container's `command` following it, the image's paths (/app/...) pointing into this checkout (the image's
WORKDIR /app is a copy of it); the docker runtime runs the image itself. `environment` is copied and `secrets` are resolved from the emulator's
Secrets Manager (whole secret or one JSON key) and SSM Parameter Store, exactly as the agent resolves
`valueFrom`. Each container port gets a free host port: the first is given to the process as LISTEN_ADDR, and a port
the command names after a port option (`--web-port 8089`) is rewritten to its host port. A Cloud Map name
in the command (`master.loadgen.local`) stands for 127.0.0.1 and the ports of the task registered under it,
as the VPC's DNS would resolve it to that task's address.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devenv import stack_names as names
from devenv.errors import DevenvError
from devenv.runtime.docker import TLS_DIR, ContainerConfig, HealthCheck, container_name, labels
from devenv.runtime.state import StateDir

# The llmproxy image's repositories: the stack's ECR repository and the image's own name.
LLMPROXY_REPOSITORIES = (names.ECR_REPOSITORY_NAME, "llmproxy")
# The loadtest image's (dockerfiles/loadtest.Dockerfile): the load generator stack's ECR repository, its own name.
LOADTEST_REPOSITORIES = (names.LOADTEST_REPOSITORY_NAME, "devenv-loadtest")

# Image repository name -> the local command that stands for the image's entry point.
IMAGE_ENTRYPOINTS: dict[str, list[str]] = {
    **{repository: [sys.executable, "-m", "llmproxy"] for repository in LLMPROXY_REPOSITORIES},
    **{repository: [sys.executable, "-m", "locust"] for repository in LOADTEST_REPOSITORIES},
}
# Image repository name -> environment a native run adds: a container's wildcard binds, kept to this host.
IMAGE_ENVIRONMENT: dict[str, dict[str, str]] = {
    repository: {"LOCUST_WEB_HOST": "127.0.0.1", "LOCUST_MASTER_BIND_HOST": "127.0.0.1"}
    for repository in LOADTEST_REPOSITORIES
}
IMAGE_WORKDIR = "/app"  # the images' WORKDIR (dockerfiles/)
CHECKOUT = Path(__file__).resolve().parents[2]  # what the loadtest image's /app is a copy of


# The stack's ECR repository (and the image's own name) -> the image built here under that name.
LOCAL_REPOSITORIES = dict.fromkeys(LLMPROXY_REPOSITORIES, "llmproxy")


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
    container_ports: tuple[int, ...]
    stop_timeout_s: float
    essential: bool = True
    health_check: dict[str, Any] = field(default_factory=dict)

    @property
    def container_port(self) -> int | None:
        """The first port: the one LISTEN_ADDR names and a load balancer targets."""
        return self.container_ports[0] if self.container_ports else None


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


def native_argv(
    container: LocalContainer,
    workdir: Path | None,
    ports: Mapping[int, int],
    hosts: Mapping[str, Mapping[int, int]],
) -> list[str]:
    """The local command standing for the container's image and command: the image's paths in `workdir`,
    its container ports (`ports`: container port -> host port) and each Cloud Map name of `hosts` (with
    its task's ports) as this host has them."""
    entry = IMAGE_ENTRYPOINTS.get(repository_name(container.image))
    if entry is None:
        raise UnrealizableTask(
            f"container {container.name!r} runs image {container.image!r}, which has no local entry point",
            f"known image repositories: {', '.join(sorted(IMAGE_ENTRYPOINTS))} (or run images: --runtime docker)",
        )
    host_ports = dict(ports)
    for name in discovery_names(container.command, hosts):
        for container_port, host_port in hosts[name].items():
            host_ports.setdefault(container_port, host_port)
    image_paths = re.compile(rf"(^|,){re.escape(IMAGE_WORKDIR)}/")
    command = []
    for index, argument in enumerate(container.command):
        option = container.command[index - 1] if index else ""
        if argument in hosts:
            argument = "127.0.0.1"
        elif (
            option.startswith("-") and "port" in option and argument.isdigit() and int(argument) in host_ports
        ):
            argument = str(host_ports[int(argument)])
        elif workdir is not None:
            argument = image_paths.sub(lambda match: f"{match.group(1)}{workdir}/", argument)
        command.append(argument)
    return [*entry, *command]


def native_workdir(container: LocalContainer, llmproxy_source: Path | None) -> Path | None:
    """What the image's WORKDIR /app stands for natively: this checkout for the loadtest image (its
    loadtests/ and devenv/), the llmproxy copy's parent for the llmproxy image (/app/llmproxy)."""
    if repository_name(container.image) in LOADTEST_REPOSITORIES:
        return CHECKOUT
    return llmproxy_source.parent if llmproxy_source else None


def native_environment(container: LocalContainer) -> dict[str, str]:
    """What a native run of the container's image adds to its environment (IMAGE_ENVIRONMENT)."""
    return dict(IMAGE_ENVIRONMENT.get(repository_name(container.image), {}))


def discovery_names(command: Iterable[str], names_known: Iterable[str]) -> list[str]:
    """The Cloud Map names (of `names_known`) a container's command connects to."""
    arguments = set(command)
    return sorted(name for name in names_known if name in arguments)


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
                container_ports=tuple(ports),
                stop_timeout_s=float(container.get("stopTimeout", 30)),
                essential=container.get("essential", True),
                health_check=container.get("healthCheck", {}),
            )
        )
    return containers
