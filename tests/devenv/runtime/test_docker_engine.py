"""The Docker path against a real Docker Engine (`nox -s docker`): scripts/docker-engine.sh, then
`devenv up -d --runtime docker` to the first chat completion through the ALB mirror with every service
and ECS task a container of its image, `status`, `logs`, a proxy task killed under load (the failover
experiment), and `down` leaving no container, volume or network of ours.

One stack for the module; the tests run in file order (`nox -s docker` turns random order off) and the
last one takes it down.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from devenv.realize import tasks
from devenv.runtime import docker as docker_runtime
from devenv.runtime.state import StateDir
from devenv.services import containers
from tests.conftest import reachable_tmpdir
from tests.docker_engine import engine_script
from tests.local_stack import PORT_SETTINGS, Stack, props_mock_upstream_port
from tests.ports import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.docker

CI_TOLERANCES = ("max_failure_rate=0.05", "max_recovery_s=20", "max_p99_ms=5000")  # as nox -s failover_smoke


@pytest.fixture(scope="module")
def api(docker_engine: str) -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


def ours(api: docker.DockerClient, state: StateDir) -> dict[str, Any]:
    """This state dir's containers, by the service (or task process) each runs."""
    label = f"{docker_runtime.LABEL_STATE_DIR}={state.root.resolve()}"
    found = api.containers.list(all=True, filters={"label": label})
    return {c.labels[docker_runtime.LABEL_SERVICE]: c for c in found}


def volume_and_network_names(api: docker.DockerClient) -> tuple[set[str], set[str]]:
    return {v.name for v in api.volumes.list()}, {n.name for n in api.networks.list()}


@pytest.fixture(scope="module")
def before(api: docker.DockerClient) -> tuple[set[str], set[str]]:
    """The engine's volumes and networks before the stack: `down` must bring it back to these."""
    return volume_and_network_names(api)


@pytest.fixture(scope="module")
def stack(docker_images: dict[str, str], before: tuple[set[str], set[str]]) -> Iterator[Stack]:
    state_dir = reachable_tmpdir("devenv-test-docker-")
    ports = {name: free_port() for name in PORT_SETTINGS}
    ports["mock_upstream_port"] = props_mock_upstream_port()
    env = {
        **os.environ,
        "DEVENV_STATE_DIR": str(state_dir),
        "DEVENV_AUTOSCALING": "false",  # the failover experiment sets the desired counts it needs
        **{f"DEVENV_{name.upper()}": str(port) for name, port in ports.items()},
    }
    run = Stack(
        env, f"http://127.0.0.1:{ports['alb_port']}", f"http://127.0.0.1:{ports['emulator_port']}", ""
    )
    try:
        up = run.devenv("up", "-d", "--runtime", "docker", timeout=900)
        assert up.returncode == 0, up.stdout + up.stderr
        created = run.devenv("token", "create", "--output", "json")
        assert created.returncode == 0, created.stderr
        run.token = json.loads(created.stdout)["token"]
        yield run
    finally:
        run.devenv("down", "--volumes", timeout=300)
        shutil.rmtree(state_dir, ignore_errors=True)


def state_of(stack: Stack) -> StateDir:
    return StateDir(Path(stack.env["DEVENV_STATE_DIR"]))


def running_tasks(stack: Stack) -> dict[str, str]:
    """ECS's RUNNING tasks: the local process name of each -> its task definition's image."""
    ecs = stack.client("ecs")
    cluster = ecs.list_clusters()["clusterArns"][0]
    arns = [
        arn
        for service in ("proxy", "dispatcher")
        for arn in ecs.list_tasks(cluster=cluster, serviceName=service)["taskArns"]
    ]
    found = {}
    for task in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]:
        definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
        (container,) = [c for c in definition["containerDefinitions"] if c.get("essential", True)]
        found[f"{container['name']}-{task['taskArn'].rsplit('/', 1)[-1][:8]}"] = container["image"]
    return found


def test_the_engine_script_starts_its_own_engine_beside_another_and_stops_only_that(
    docker_engine: str, tmp_path: Path
) -> None:
    roots = ["--data-root", str(tmp_path / "data"), "--exec-root", str(tmp_path / "run")]
    started = engine_script("start", *roots)
    try:
        assert started.returncode == 0, started.stderr
        host = started.stdout.strip().removeprefix("DOCKER_HOST=")
        assert host == f"unix://{tmp_path}/run/docker.sock" != docker_engine
        assert "storage driver overlay2" in started.stderr or "vfs" in started.stderr
        again = engine_script("start", *roots)
        assert again.returncode == 0 and again.stdout == started.stdout and "already running" in again.stderr
        assert engine_script("status", *roots).returncode == 0
    finally:
        stopped = engine_script("stop", *roots, timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert engine_script("status", *roots).returncode == 1
    assert not (tmp_path / "run" / "docker.sock").exists()
    mounts = Path("/proc/self/mounts").read_text()
    assert str(tmp_path) not in mounts  # nothing left mounted: the folders can be deleted
    other = docker.DockerClient(base_url=docker_engine)
    assert other.ping()  # the session's engine was never touched
    other.close()


def test_every_service_and_task_runs_as_a_container_of_its_image(
    stack: Stack, api: docker.DockerClient, docker_images: dict[str, str]
) -> None:
    state = state_of(stack)
    running = ours(api, state)
    expected_images = {
        "postgres": docker_images.get("DEVENV_POSTGRES_IMAGE", containers.POSTGRES_IMAGE),
        "redis": docker_images.get("DEVENV_REDIS_IMAGE", containers.REDIS_IMAGE),
        "emulator": docker_runtime.CLOUD_IMAGE,
        "mock-upstream": docker_runtime.LLMPROXY_IMAGE,
    }
    task_images = running_tasks(stack)
    assert {name.split("-")[0] for name in task_images} == {"proxy", "dispatcher"}
    expected_images |= {process: tasks.local_image(image) for process, image in task_images.items()}
    assert {name: c.image.tags[0] for name, c in running.items()} == expected_images
    assert all(
        c.status == "running" and c.attrs["HostConfig"]["NetworkMode"] == "host" for c in running.values()
    )
    # the stack's ECR image, run as the llmproxy image built here
    assert {tasks.local_image(image) for image in task_images.values()} == {docker_runtime.LLMPROXY_IMAGE}


def test_the_first_chat_completion_goes_through_the_alb_mirror_to_a_task_container(stack: Stack) -> None:
    status, headers = stack.chat()
    assert status == 200
    assert headers.get("Via", "").endswith("Caddy")  # the ALB mirror
    assert headers["X-Mock-Authorization"].startswith("Bearer sk-devenv")  # the proxy task swapped the key
    code, health = stack.health()
    assert code == 200 and health["status"] == "ok", health


def test_status_and_logs_read_the_containers(stack: Stack, api: docker.DockerClient) -> None:
    document = stack.status()
    assert document["runtime"] == "docker" and document["running"]
    assert {s["name"]: s["state"] for s in document["services"]}.keys() >= {"postgres", "redis", "emulator"}
    assert all(s["state"] == "running" for s in document["services"])
    proxy = next(name for name in running_tasks(stack) if name.startswith("proxy-"))
    logs = stack.devenv("logs", proxy)
    assert logs.returncode == 0, logs.stderr
    container = docker_runtime.container_name(state_of(stack), proxy)
    assert f"container {container} ({docker_runtime.LLMPROXY_IMAGE}) started" in logs.stdout
    assert "Uvicorn running on http://127.0.0.1:" in logs.stdout  # the container's own output


def test_a_proxy_task_killed_under_load_is_replaced_by_a_new_container(
    stack: Stack, api: docker.DockerClient, tmp_path: Path
) -> None:
    tolerances = [arg for value in CI_TOLERANCES for arg in ("--tolerance", value)]
    run = stack.devenv(
        "failover",
        "proxy-task-kill",
        "--duration",
        "10",
        *tolerances,
        "--report-dir",
        str(tmp_path),
        "--output",
        "json",
        timeout=600,
    )
    journal = json.loads(run.stdout)
    assert run.returncode == 0 and journal["verdict"] == "pass", run.stdout[-3000:] + run.stderr[-3000:]
    (killed,) = [s["data"]["task"] for s in journal["steps"] if s["action"] == "ecs.stop_task"]
    process = f"proxy-{killed.rsplit('/', 1)[-1][:8]}"

    # the experiment puts the desired count back: a task it scales in may still be draining, its container
    # present, so the containers are compared with ECS's RUNNING tasks once both have settled
    def task_containers() -> tuple[set[str], set[str]]:
        running = ours(api, state_of(stack))
        return {name for name in running if name.startswith(("proxy-", "dispatcher-"))}, set(
            running_tasks(stack)
        )

    wait_for(
        lambda: (lambda pair: pair[0] == pair[1])(task_containers()), timeout_s=90, describe=task_containers
    )
    assert process not in ours(api, state_of(stack))  # its container is gone, not merely stopped
    assert journal["lost_events"] == 0


def test_down_leaves_no_container_volume_or_network_of_ours(
    stack: Stack, api: docker.DockerClient, before: tuple[set[str], set[str]]
) -> None:
    state = state_of(stack)
    down = stack.devenv("down", timeout=300)
    assert down.returncode == 0, down.stderr
    assert ours(api, state) == {}
    volumes, networks = volume_and_network_names(api)
    data = set(docker_runtime.data_volumes(state).values())
    assert volumes - before[0] == data  # only the named data volumes stay (as native data does)
    assert networks == before[1]  # host networking: none made
    wiped = stack.devenv("down", "--volumes", timeout=300)
    assert wiped.returncode == 0, wiped.stderr
    assert volume_and_network_names(api) == before
    assert json.loads(stack.devenv("status", "--output", "json").stdout)["running"] is False
