"""What the docker runtime asks of Docker, checked without a daemon: the container process
(`python -m devenv.runtime.container_process`) and `devenv down`'s clean-up talk to a recording stub of
the Docker Engine API (engine_stub.py), and the tests read the container spec Docker would get.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.errors import MissingDependencyError
from devenv.realize import tasks
from devenv.runtime import docker as docker_runtime
from devenv.runtime.docker import ContainerConfig, HealthCheck
from devenv.runtime.state import StateDir
from tests.devenv.runtime.engine_stub import EngineStub, serve
from tests.waiting import wait_for


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineStub]:
    with serve(tmp_path, images={"devenv-cloud:local", "llmproxy:local", "redis:7"}) as (stub, host):
        monkeypatch.setenv("DOCKER_HOST", host)
        yield stub


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    state = StateDir(tmp_path / ".devenv")
    state.ensure()
    return state


def start_process(state: StateDir, config: ContainerConfig) -> subprocess.Popen[bytes]:
    """The container process as the supervisor starts it (its argv), output to a log file."""
    log = open(state.log_for(config.name), "ab")  # noqa: SIM115  (closed with the process)
    return subprocess.Popen(
        docker_runtime.process_argv(state, config),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )


def task(state: StateDir, tmp_path: Path) -> ContainerConfig:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nlocal CA\n")
    return tasks.task_container(
        state,
        "proxy-1a2b3c4d",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-proxy:local",
        ["proxy"],
        {
            "LISTEN_ADDR": "127.0.0.1:41234",
            "DATABASE_URL": "postgresql://u:p@127.0.0.1:5433/llmproxy",
            "REDIS_CA_FILE": str(ca),
        },
        stop_timeout_s=7,
    )


def test_a_task_runs_as_its_image_on_the_host_network_and_stops_on_sigterm(
    engine: EngineStub, state: StateDir, tmp_path: Path
) -> None:
    config = task(state, tmp_path)
    process = start_process(state, config)
    try:
        wait_for(engine.running)
        (spec,) = engine.created()
        assert spec["Image"] == "llmproxy:local"  # the ECR image of the task definition, as built here
        assert spec["Cmd"] == ["proxy"]
        assert "LISTEN_ADDR=127.0.0.1:41234" in spec["Env"]  # the host port the ALB mirror targets
        assert "DATABASE_URL=postgresql://u:p@127.0.0.1:5433/llmproxy" in spec["Env"]  # the Aurora endpoint
        assert "REDIS_CA_FILE=/tls/ca.crt" in spec["Env"]
        assert spec["HostConfig"]["NetworkMode"] == "host"
        assert spec["Healthcheck"]["Test"] == ["NONE"]  # devenv probes from the host
        assert spec["Labels"][docker_runtime.LABEL_STATE_DIR] == str(state.root.resolve())
        assert engine.calls("POST", r"/containers/create\?name=" + config.container_name)
        (body,) = [b for m, p, b in engine.requests if m == "PUT" and "/archive" in p]
        with tarfile.open(fileobj=io.BytesIO(body)) as archive:
            (name,) = archive.getnames()
            member = archive.extractfile(name)
            assert name.lstrip("/") == "tls/ca.crt"
            assert member is not None and member.read().startswith(b"-----BEGIN CERTIFICATE")
        assert process.poll() is None  # it lives as long as the container
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0  # the container's exit code
    finally:
        process.kill()
        process.wait()
    (stop,) = engine.calls("POST", r"/containers/\w+/stop")
    assert "t=7" in stop  # the task definition's stopTimeout: Docker's SIGTERM, then SIGKILL
    assert engine.containers == {}  # removed on the way out
    assert "started" in state.log_for(config.name).read_text()


def test_a_container_that_exits_ends_its_process_with_its_code(
    engine: EngineStub, state: StateDir, tmp_path: Path
) -> None:
    process = start_process(state, task(state, tmp_path))
    try:
        wait_for(engine.running)
        engine.exit(engine.running()[0], 3)
        assert process.wait(20) == 3  # the supervisor sees the task fail, as ECS sees the container exit
    finally:
        process.kill()
        process.wait()
    assert engine.containers == {}


def test_a_container_left_by_a_killed_run_is_replaced(
    engine: EngineStub, state: StateDir, tmp_path: Path
) -> None:
    config = task(state, tmp_path)
    first = start_process(state, config)
    wait_for(engine.running)
    first.kill()  # SIGKILL: no clean-up (the reaper would remove it on a real daemon)
    first.wait()
    (stale,) = engine.running()
    engine.containers[stale]["Name"] = "/" + config.container_name
    second = start_process(state, config)
    try:
        wait_for(lambda: len(engine.running()) == 1 and engine.running()[0] != stale)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    assert engine.calls("DELETE", stale)


def test_a_config_round_trips_through_its_file(state: StateDir) -> None:
    config = ContainerConfig(
        name="redis",
        image="redis:7",
        container_name="devenv-x-redis",
        command=("redis-server", "--port", "6390"),
        env={"A": "1"},
        health=HealthCheck(("redis-cli", "ping"), interval_s=0.5),
        volumes={"data": "/data"},
        files={"/tls/key": b"\x00\xffsecret"},
    )
    path = Path(docker_runtime.process_argv(state, config)[-1])
    assert ContainerConfig.from_json(path.read_text()) == config
    assert path.stat().st_mode & 0o077 == 0  # it holds resolved secrets: the owner's only


def test_without_a_daemon_the_process_says_so_and_exits_125(
    state: StateDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    config = task(state, tmp_path)
    done = subprocess.run(
        docker_runtime.process_argv(state, config), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 125
    assert f"could not start llmproxy:local as {config.container_name}" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_project_images_are_named_with_the_build_command(engine: EngineStub) -> None:
    engine.images.discard("devenv-cloud:local")
    with pytest.raises(MissingDependencyError) as caught:
        docker_runtime.ensure_images(["redis:7", "devenv-cloud:local"], print)
    assert "devenv-cloud:local" in caught.value.message
    assert caught.value.hint is not None
    assert "docker build -f dockerfiles/cloud.Dockerfile -t devenv-cloud:local ." in caught.value.hint
    assert engine.created() == []


def test_down_removes_what_a_killed_run_left_and_the_data_volumes(
    engine: EngineStub, state: StateDir, tmp_path: Path
) -> None:
    process = start_process(state, task(state, tmp_path))
    wait_for(engine.running)
    process.kill()
    process.wait()
    engine.volumes |= set(docker_runtime.data_volumes(state).values()) | {"someone-elses"}
    state.write({"supervisor": {"phase": "ready"}, "services": {}, "facts": {"runtime": "docker"}})
    assert docker_runtime.clean_up(state, volumes=True) == 1
    assert engine.containers == {}
    assert engine.volumes == {"someone-elses"}
    (listing,) = engine.calls("GET", r"/containers/json")
    assert "dev.devenv.state-dir" in listing  # only this state dir's containers


def test_main_refuses_a_wrong_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devenv.runtime.container_process"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "usage" in done.stderr


def test_a_container_pid_is_recorded_only_when_it_is_this_hosts(tmp_path: Path, state: StateDir) -> None:
    from devenv.runtime.container_process import in_cgroup_of

    cid = "4f" * 32
    (tmp_path / "proc" / "4242").mkdir(parents=True)
    (tmp_path / "proc" / "4242" / "cgroup").write_text(f"0::/system.slice/docker-{cid}.scope\n")
    assert in_cgroup_of(4242, cid, tmp_path / "proc")
    assert not in_cgroup_of(4242, "9a" * 32, tmp_path / "proc")  # another container's process
    assert not in_cgroup_of(4343, cid, tmp_path / "proc")  # no such process here (a VM's pid)
    assert docker_runtime.container_pid(state, "proxy-1") is None
    pid_file = Path(docker_runtime.process_argv(state, task(state, tmp_path))[-1]).with_suffix(".pid")
    pid_file.write_text("4242")
    assert docker_runtime.container_pid(state, "proxy-1a2b3c4d") == 4242


def test_up_with_an_unbuilt_project_image_names_the_build_and_starts_nothing(
    engine: EngineStub, state: StateDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`devenv up --runtime docker` through the CLI: the daemon answers, the local cloud image is not built."""
    from devenv.cli.app import app
    from tests.ports import free_port

    engine.images = {"postgres:18", "redis:7", "llmproxy:local"}
    monkeypatch.setenv("DEVENV_STATE_DIR", str(state.root))
    for setting in ("POSTGRES_PORT", "REDIS_PORT", "EMULATOR_PORT"):
        monkeypatch.setenv(f"DEVENV_{setting}", str(free_port()))
    with pytest.raises(MissingDependencyError) as caught:
        app(args=["up", "--runtime", "docker", "--infra-only"], standalone_mode=False)
    assert "devenv-cloud:local" in caught.value.message
    assert caught.value.hint is not None and "dockerfiles/cloud.Dockerfile" in caught.value.hint
    assert engine.created() == []  # checked before anything starts
    assert not state.state_file.exists()


def test_a_rootless_daemon_is_refused_and_docker_desktop_reminded(engine: EngineStub) -> None:
    engine.info = {"OperatingSystem": "Ubuntu", "SecurityOptions": ["name=seccomp", "name=rootless"]}
    with pytest.raises(MissingDependencyError, match="rootless"):
        docker_runtime.ensure_images(["redis:7"], print)
    said: list[str] = []
    engine.info = {"OperatingSystem": "Docker Desktop", "SecurityOptions": []}
    docker_runtime.ensure_images(["redis:7"], said.append)
    assert any("host networking" in line for line in said)


def test_a_missing_air_gapped_stand_in_is_named_with_its_build_and_never_pulled(engine: EngineStub) -> None:
    with pytest.raises(MissingDependencyError) as caught:
        docker_runtime.ensure_images(["redis:7", "devenv-base/postgres-18:local"], print)
    assert "devenv-base/postgres-18:local" in caught.value.message
    assert caught.value.hint is not None and "devenv.services.images build --air-gapped" in caught.value.hint
    assert engine.calls("POST", r"/images/create") == []  # no pull of a name only this machine has
