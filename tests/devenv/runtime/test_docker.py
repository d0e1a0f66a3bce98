"""The docker runtime: what it would run (always tested), and running it (only where a daemon answers)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis as redis_lib

from devenv.config import Settings
from devenv.errors import MissingDependencyError, UsageError
from devenv.realize import tasks
from devenv.runtime import docker as docker_runtime
from devenv.runtime import docker_daemon_answers, resolve_runtime
from devenv.runtime.docker import ContainerConfig, HealthCheck
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import ServiceSpec, Supervisor
from devenv.services import assembly, postgres
from tests.devenv.runtime.engine_stub import serve
from tests.ports import free_port

NO_DOCKER_HOST = "unix:///nonexistent/docker.sock"  # a Docker host nothing answers on


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    state = StateDir(tmp_path / ".devenv")
    state.ensure()
    return state


@pytest.fixture
def settings(state: StateDir) -> Settings:
    ports = (
        *("postgres_port", "redis_port", "emulator_port", "alb_port", "alb_https_port"),
        *("mock_upstream_port", "aurora_port", "elasticache_port", "dashboard_port"),
    )
    return Settings.model_validate({"state_dir": state.root, **{name: free_port() for name in ports}})


def by_name(configs: list[ContainerConfig]) -> dict[str, ContainerConfig]:
    return {c.name: c for c in configs}


# -- what it runs ------------------------------------------------------------------------------


def infrastructure(settings: Settings, state: StateDir) -> dict[str, ServiceSpec]:
    ports = assembly.claim_ports(settings, infra_only=False)
    specs = assembly.infrastructure(settings, state, ports, "docker")
    specs += assembly.application(settings, state, ports, "docker")
    return {s.name: s for s in specs}


def config_of(spec: ServiceSpec) -> ContainerConfig:
    """The container a service's process runs (its argv names the configuration file)."""
    assert spec.argv[1:3] == ["-m", "devenv.runtime.container_process"]
    return ContainerConfig.from_json(Path(spec.argv[3]).read_text())


def test_the_native_services_run_from_pinned_and_project_images(settings: Settings, state: StateDir) -> None:
    specs = infrastructure(settings, state)
    assert list(specs) == ["postgres", "redis", "emulator", "mock-upstream"]  # the realizer runs the tasks
    images = {name: config_of(spec).image for name, spec in specs.items()}
    assert images == {
        "postgres": f"postgres:{postgres.PINNED_MAJOR}",
        "redis": "redis:7",
        "emulator": "devenv-cloud:local",
        "mock-upstream": "llmproxy:local",
    }
    assert {name: spec.extra["image"] for name, spec in specs.items()} == images  # checked before starting
    assert set(docker_runtime.PROJECT_IMAGES) == {"llmproxy:local", "devenv-cloud:local"}
    assert specs["emulator"].depends_on == ("postgres", "redis")


def test_containers_listen_where_the_native_services_do(settings: Settings, state: StateDir) -> None:
    """The same ports, URLs and readiness probes as native: host networking, each on its own port."""
    specs = infrastructure(settings, state)
    native = {
        s.name: s for s in assembly.infrastructure(settings, state, assembly.claim_ports(settings, True))
    }
    for name in ("postgres", "redis", "emulator"):
        assert (
            specs[name].ports.items() >= {k: v for k, v in native[name].ports.items() if k != "tls"}.items()
        )
        assert specs[name].url == native[name].url
    for spec in specs.values():
        kwargs = config_of(spec).create_kwargs()
        assert kwargs["network_mode"] == "host"
        assert "ports" not in kwargs  # nothing to publish: a container listens on 127.0.0.1 directly
        assert spec.stop_timeout_s > config_of(spec).stop_timeout_s  # Docker's grace, then the process's
    pg = config_of(specs["postgres"])
    assert pg.command[:3] == ("postgres", "-p", str(settings.postgres_port))
    assert "listen_addresses=127.0.0.1" in pg.command
    assert config_of(specs["emulator"]).command[:4] == (
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.emulator_port),
    )


def test_the_emulator_container_gets_the_native_emulators_environment(
    settings: Settings, state: StateDir
) -> None:
    ports = assembly.claim_ports(settings, infra_only=False)
    native = assembly.infrastructure(settings, state, ports)[2]
    container = config_of(assembly.infrastructure(settings, state, ports, "docker")[2])
    assert native.env is not None
    for key in (
        "DEVENV_POSTGRES_ADMIN_URL",
        "DEVENV_POSTGRES_ENDPOINT",
        "DEVENV_REDIS_ENDPOINT",
        "AWS_REGION",
    ):
        assert container.env[key] == native.env[key], key
    assert container.env["DEVENV_POSTGRES_ENDPOINT"] == f"127.0.0.1:{ports.aurora}"  # the fault proxy
    # generated secrets outlive the container, as the Postgres data they open does
    assert container.env["DEVENV_GENERATED_SECRETS"].startswith(docker_runtime.CLOUD_DATA_DIR)
    assert container.volumes == {
        docker_runtime.data_volumes(state)["emulator"]: docker_runtime.CLOUD_DATA_DIR
    }
    assert "PATH" not in container.env  # nothing of the host's environment leaks into a container


def test_postgres_keeps_its_data_in_a_named_volume(settings: Settings, state: StateDir) -> None:
    pg = config_of(infrastructure(settings, state)["postgres"])
    assert pg.volumes == {docker_runtime.data_volumes(state)["postgres"]: "/var/lib/postgresql"}
    assert pg.env == {
        "POSTGRES_USER": settings.postgres_user,
        "POSTGRES_PASSWORD": settings.postgres_password,
    }
    assert pg.health is not None and pg.health.test[0] == "pg_isready"
    assert pg.create_kwargs()["labels"][docker_runtime.LABEL_SERVICE] == "postgres"


def test_container_names_and_volumes_are_per_state_dir(tmp_path: Path) -> None:
    one, two = StateDir(tmp_path / "a"), StateDir(tmp_path / "b")
    assert docker_runtime.container_name(one, "redis") == docker_runtime.container_name(
        StateDir(tmp_path / "a"), "redis"
    )
    assert docker_runtime.container_name(one, "redis") != docker_runtime.container_name(two, "redis")
    assert not set(docker_runtime.data_volumes(one).values()) & set(docker_runtime.data_volumes(two).values())


def test_health_check_in_docker_units() -> None:
    check = HealthCheck(("redis-cli", "ping"), interval_s=0.5, timeout_s=2, retries=3, start_period_s=1.5)
    assert check.to_docker() == {
        "test": ["CMD", "redis-cli", "ping"],
        "interval": 500_000_000,
        "timeout": 2_000_000_000,
        "retries": 3,
        "start_period": 1_500_000_000,
    }


def test_task_container_is_what_the_realizer_asks_for(state: StateDir, tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"the CA")
    task = tasks.task_container(
        state,
        "proxy-1a2b3c4d",
        "llmproxy:local",
        ["proxy"],
        {"LISTEN_ADDR": "127.0.0.1:40001", "REDIS_CA_FILE": str(ca)},
        stop_timeout_s=30,
        health_check={"command": ["CMD-SHELL", "true"], "interval": 5},
    )
    assert (task.image, task.command, task.env["LISTEN_ADDR"]) == (
        "llmproxy:local",
        ("proxy",),
        "127.0.0.1:40001",
    )
    assert task.env["REDIS_CA_FILE"] == "/tls/ca.crt" and task.files == {"/tls/ca.crt": b"the CA"}
    assert task.container_name == docker_runtime.container_name(state, "proxy-1a2b3c4d")
    assert task.stop_timeout_s == 30
    assert task.health == HealthCheck(("sh", "-c", "true"), interval_s=5, timeout_s=5, retries=3)
    with pytest.raises(ValueError, match="names no image"):
        tasks.task_container(state, "t", "", [], {}, 30)


@pytest.mark.parametrize(
    ("named", "local"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-proxy:local", "llmproxy:local"),
        ("123456789012.dkr.ecr.eu-central-1.amazonaws.com/llm-proxy:v1.2.3", "llmproxy:v1.2.3"),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-proxy", "llmproxy:latest"),
        ("llmproxy:local", "llmproxy:local"),
        ("public.ecr.aws/xray/aws-xray-daemon:3.3.14", "public.ecr.aws/xray/aws-xray-daemon:3.3.14"),
        ("docker.io/someone/llm-proxy:1", "docker.io/someone/llm-proxy:1"),  # not the stack's repository
    ],
)
def test_task_images_map_to_the_images_built_here(named: str, local: str, state: StateDir) -> None:
    assert tasks.local_image(named) == local
    assert tasks.task_container(state, "t", named, [], {}, 30).image == local


def test_ecs_health_checks_become_docker_ones() -> None:
    shell = {"command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"], "interval": 10}
    assert tasks.health_from_ecs(shell) == HealthCheck(
        ("sh", "-c", "curl -f http://localhost:8080/health || exit 1"), interval_s=10, timeout_s=5, retries=3
    )
    exec_form = {"command": ["CMD", "pg_isready"], "timeout": 2, "retries": 5, "startPeriod": 20}
    assert tasks.health_from_ecs(exec_form) == HealthCheck(
        ("pg_isready",), interval_s=30, timeout_s=2, retries=5, start_period_s=20
    )
    assert tasks.health_from_ecs(None) is None
    with pytest.raises(ValueError, match="CMD or CMD-SHELL"):
        tasks.health_from_ecs({"command": ["NONE"]})


def test_the_redis_container_command_serves_plain_and_tls_with_its_files(
    settings: Settings, state: StateDir, tmp_path: Path
) -> None:
    """The container's redis-server arguments and files, run by a real redis-server."""
    redis_config = config_of(infrastructure(settings, state)["redis"])
    folder = tmp_path / "tls"
    folder.mkdir()
    for path, content in redis_config.files.items():
        (folder / Path(path).name).write_bytes(content)
    argv = [a.replace("/tls/", f"{folder}/") for a in redis_config.command]
    plain, tls = settings.redis_port, int(argv[argv.index("--tls-port") + 1])
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        # devenv's CA, the one the tasks trust (REDIS_CA_FILE)
        ca = str(assembly.tls_files(state).ca_cert)
        secure = redis_lib.Redis.from_url(f"rediss://localhost:{tls}/0", ssl_ca_certs=ca)
        for _ in range(100):
            try:
                assert secure.ping()
                break
            except redis_lib.ConnectionError:
                assert proc.poll() is None, "redis-server exited"
                time.sleep(0.05)
        assert redis_lib.Redis(host="127.0.0.1", port=plain).ping()  # the emulator's and the host's port
        secure.close()
    finally:
        proc.terminate()
        proc.wait(10)


# -- choosing the runtime, and the CLI around it ------------------------------------------------


def test_resolve_runtime_follows_the_daemon() -> None:
    assert resolve_runtime("native") == "native"
    if docker_daemon_answers():
        assert resolve_runtime("docker") == resolve_runtime("auto") == "docker"
        return
    assert resolve_runtime("auto") == "native"
    with pytest.raises(UsageError) as caught:
        resolve_runtime("docker")
    assert caught.value.exit_code == 2
    assert "no Docker daemon answers" in caught.value.message
    assert caught.value.hint is not None and "--runtime native" in caught.value.hint


def devenv_in_process(
    monkeypatch: pytest.MonkeyPatch, state: StateDir, *args: str, docker_host: str = NO_DOCKER_HOST
) -> None:
    """The CLI without a process start (which costs seconds here); DevenvErrors propagate."""
    from devenv.cli.app import app

    monkeypatch.setenv("DEVENV_STATE_DIR", str(state.root))
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    app(args=list(args), standalone_mode=False)


def docker_snapshot(phase: str) -> dict[str, object]:
    service = {"pid": None, "state": "stopped", "health": "n/a", "ports": {"redis": 6379}, "image": "redis:7"}
    return {
        "supervisor": {"pid": os.getpid(), "phase": phase, "error": None},
        "services": {"redis": service},
        "facts": {"runtime": "docker", "region": "us-east-1"},
    }


def test_up_with_runtime_docker_and_no_daemon_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, state: StateDir
) -> None:
    with pytest.raises(UsageError, match="no Docker daemon answers"):
        devenv_in_process(monkeypatch, state, "up", "--runtime", "docker", "--infra-only")
    assert not state.state_file.exists()  # nothing half-started


def test_down_after_a_clean_docker_run_needs_no_daemon(
    monkeypatch: pytest.MonkeyPatch, state: StateDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state.write(docker_snapshot("stopped"))
    with serve(tmp_path, images=set()) as (engine, host):  # a daemon that records every call made to it
        devenv_in_process(monkeypatch, state, "down", docker_host=host)
    assert engine.requests == []  # nothing left behind, so nothing to ask Docker
    out = capsys.readouterr().out
    assert "devenv is not running" in out and "left behind" not in out and out.rstrip().endswith("down")


def test_down_with_containers_left_behind_and_no_daemon_says_so(
    monkeypatch: pytest.MonkeyPatch, state: StateDir
) -> None:
    state.write(docker_snapshot("ready"))  # a supervisor that died while running containers
    with pytest.raises(MissingDependencyError) as caught:
        devenv_in_process(monkeypatch, state, "down")
    assert "the Docker daemon does not answer" in caught.value.message
    assert caught.value.hint is not None and "start Docker" in caught.value.hint


# -- running containers: against a real engine (tests/docker_engine.py) -------------------------


@pytest.mark.docker
def test_postgres_and_redis_containers_start_ready_and_stop_leaving_nothing(
    settings: Settings, state: StateDir, docker_images: dict[str, str]
) -> None:
    images = {"DEVENV_POSTGRES_IMAGE": "postgres_image", "DEVENV_REDIS_IMAGE": "redis_image"}
    settings = settings.model_copy(update={images[k]: v for k, v in docker_images.items() if k in images})
    specs = infrastructure(settings, state)
    docker_runtime.ensure_images([specs[n].extra["image"] for n in ("postgres", "redis")], print)
    supervisor = Supervisor(state, {"runtime": "docker"})
    try:
        supervisor.start_all([specs["postgres"], specs["redis"]])
        snapshot = state.read()
        assert {n: s["state"] for n, s in snapshot["services"].items()} == {
            "postgres": "running",
            "redis": "running",
        }
        client = redis_lib.Redis(host="127.0.0.1", port=settings.redis_port)
        assert client.ping()
        client.close()
        with socket.create_connection(("127.0.0.1", settings.postgres_port), timeout=2):
            pass
    finally:
        supervisor.stop_all()
    import docker

    api = docker.from_env()
    try:
        label = f"{docker_runtime.LABEL_STATE_DIR}={state.root.resolve()}"
        assert api.containers.list(all=True, filters={"label": label}) == []
        data = docker_runtime.data_volumes(state)["postgres"]
        assert api.volumes.get(data).name == data  # the data outlives the container, as native data does
        docker_runtime.clean_up(state, volumes=True)  # `down --volumes`
        assert data not in {v.name for v in api.volumes.list()}
    finally:
        api.close()
    assert json.loads(state.state_file.read_text())["supervisor"]["phase"] == "stopped"
