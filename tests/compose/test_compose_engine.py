"""compose/ against a real Docker Engine (`nox -s docker`): the `core` profile up with whatever compose
implementation is installed, every service healthy, a chat completion through Caddy (the ALB mirror),
then `down -v` leaving no container, volume or network of the project.

Compose v2 (`docker compose`) waits with `up --wait`. docker-compose 1.29 (the one Debian and PyPI have;
v2 is in neither) reads the file too, but has no `--wait`: its `up -d` starts each service once its
dependencies are healthy, and the test waits for the health of the rest itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from devenv.runtime import docker as docker_runtime
from devenv.services import containers
from tests.compose.test_compose import COMPOSE_FILE, CORE
from tests.ports import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.docker

MANAGEMENT_TOKEN = "devenv-local-management-token"  # compose.yaml's local default
PUBLISHED = set(re.findall(r"\$\{(DEVENV_\w+_PORT):-", COMPOSE_FILE.read_text()))  # host ports, all free
ONE_SHOT = {"redis-tls"}


def compose_command() -> tuple[list[str], bool]:
    """The compose to run (`docker compose` v2, else docker-compose v1), and whether it has `up --wait`."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"], True
    if found := shutil.which("docker-compose"):
        return [found], False
    pytest.fail("no compose implementation: scripts/docker-engine.sh start installs docker-compose (apt)")


@pytest.fixture
def project(docker_images: dict[str, str]) -> Iterator[tuple[list[str], dict[str, str], bool]]:
    """A compose project of its own (free host ports, the session's images); `down -v` afterwards."""
    command, waits = compose_command()
    name = f"devenvtest{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **{variable: str(free_port()) for variable in PUBLISHED},
    }
    base = [*command, "-f", str(COMPOSE_FILE), "-p", name]
    try:
        yield base, env, waits
    finally:
        subprocess.run([*base, "down", "-v"], env=env, capture_output=True, timeout=300, check=False)


def project_containers(api: docker.DockerClient, project: str) -> dict[str, Any]:
    found = api.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
    return {c.labels["com.docker.compose.service"]: c for c in found}


def settled(api: docker.DockerClient, project: str) -> dict[str, str] | None:
    """Each service's state once every long-running one is healthy and the one-shot job exited 0."""
    states = {}
    for service, container in project_containers(api, project).items():
        container.reload()
        state = container.attrs["State"]
        states[service] = state.get("Health", {}).get("Status") or state["Status"]
        if service in ONE_SHOT and state["Status"] == "exited":
            states[service] = f"exited {state['ExitCode']}"
    if set(states) != CORE:
        return None
    done = all(s == "healthy" for n, s in states.items() if n not in ONE_SHOT)
    return states if done and all(states[n] == "exited 0" for n in ONE_SHOT) else None


def call(url: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return dict(json.loads(response.read()))


def test_the_core_profile_comes_up_healthy_answers_through_caddy_and_goes_down_leaving_nothing(
    project: tuple[list[str], dict[str, str], bool], docker_images: dict[str, str]
) -> None:
    base, env, waits = project
    name = base[base.index("-p") + 1]
    up = subprocess.run(
        [*base, "up", "-d", *(["--wait"] if waits else [])],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    api = docker.from_env()
    try:
        states = wait_for(lambda: settled(api, name), timeout_s=180, interval_s=1)
        assert states["redis-tls"] == "exited 0"
        images = {service: c.image.tags[0] for service, c in project_containers(api, name).items()}
        assert images["postgres"] == docker_images.get("DEVENV_POSTGRES_IMAGE", containers.POSTGRES_IMAGE)
        assert images["redis"] == docker_images.get("DEVENV_REDIS_IMAGE", containers.REDIS_IMAGE)
        assert images["caddy"] == docker_images.get("DEVENV_CADDY_IMAGE", "caddy:2")
        assert images["proxy"] == images["dispatcher"] == docker_runtime.LLMPROXY_IMAGE
        assert images["cloud"] == docker_runtime.CLOUD_IMAGE

        alb = f"http://127.0.0.1:{env['DEVENV_ALB_PORT']}"
        health = call(f"{alb}/health", "")
        assert health["status"] == "ok"  # the proxy reached Postgres and Redis (TLS) by their service names
        created = call(
            f"{alb}/manage/projects", MANAGEMENT_TOKEN, {"name": "compose", "api_key": "sk-compose"}
        )
        token = call(
            f"{alb}/manage/tokens", MANAGEMENT_TOKEN, {"project_id": created["id"], "duration_minutes": 5}
        )
        completion = call(
            f"{alb}/v1/chat/completions",
            token["token"],
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert completion["object"] == "chat.completion" and completion["choices"][0]["message"]["content"]

        down = subprocess.run(
            [*base, "down", "-v"], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert down.returncode == 0, down.stdout + down.stderr
        label = {"label": f"com.docker.compose.project={name}"}
        assert api.containers.list(all=True, filters=label) == []
        assert api.volumes.list(filters=label) == []
        assert api.networks.list(filters=label) == []
    finally:
        api.close()
