"""The docker runtime: what it would run (always tested), and running it (only where a daemon answers)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from devenv.config import Settings
from devenv.errors import MissingDependencyError, PortInUseError, ServiceFailedError, UsageError
from devenv.runtime import docker as docker_runtime
from devenv.runtime import docker_daemon_answers, resolve_runtime
from devenv.runtime.docker import ContainerConfig, HealthCheck
from devenv.runtime.ports import free_port
from devenv.runtime.state import StateDir
from devenv.services import llmproxy, postgres
from stack import names

NO_DOCKER_HOST = "unix:///nonexistent/docker.sock"  # a Docker host nothing answers on
NO_DAEMON = "no Docker daemon answers here (docker.from_env().ping() failed): container tests need one"
needs_daemon = pytest.mark.skipif(not docker_daemon_answers(), reason=NO_DAEMON)

# What the task definitions give the proxy and the dispatcher (stack/names.py), minus what has a default.
OPTIONAL = {"HTTP_CACHE_ENABLED", "RATE_LIMIT_RPM"}


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    state = StateDir(tmp_path / ".devenv")
    state.ensure()
    return state


@pytest.fixture
def settings(state: StateDir) -> Settings:
    ports = ("postgres_port", "redis_port", "emulator_port", "alb_port", "mock_upstream_port")
    return Settings.model_validate({"state_dir": state.root, **{name: free_port() for name in ports}})


def by_name(configs: list[ContainerConfig]) -> dict[str, ContainerConfig]:
    return {c.name: c for c in configs}


# -- what it runs ------------------------------------------------------------------------------


def test_stack_runs_the_native_services_from_pinned_and_project_images(
    settings: Settings, state: StateDir
) -> None:
    configs = by_name(docker_runtime.stack(settings, state))
    assert list(configs) == ["postgres", "redis", "emulator", "mock-upstream", "proxy", "dispatcher", "alb"]
    assert configs["postgres"].image == f"postgres:{postgres.PINNED_MAJOR}"
    assert configs["redis"].image == "redis:7"
    assert {configs[n].image for n in ("mock-upstream", "proxy", "dispatcher")} == {"llmproxy:local"}
    assert configs["emulator"].image == "devenv-cloud:local"
    assert set(docker_runtime.PROJECT_IMAGES) == {"llmproxy:local", "devenv-cloud:local"}


def test_infra_only_is_postgres_redis_and_the_emulator(settings: Settings, state: StateDir) -> None:
    assert [c.name for c in docker_runtime.stack(settings, state, infra_only=True)] == [
        "postgres",
        "redis",
        "emulator",
    ]


def test_proxy_and_dispatcher_get_the_task_definitions_variables(settings: Settings, state: StateDir) -> None:
    configs = by_name(docker_runtime.stack(settings, state))
    proxy_wanted = (set(names.PROXY_SECRETS) | set(names.PROXY_PARAMETERS)) - OPTIONAL
    dispatcher_wanted = set(names.DISPATCHER_SECRETS) | set(names.DISPATCHER_PARAMETERS)
    assert proxy_wanted <= set(configs["proxy"].env)
    assert dispatcher_wanted <= set(configs["dispatcher"].env)


def test_containers_address_each_other_by_service_name(settings: Settings, state: StateDir) -> None:
    configs = by_name(docker_runtime.stack(settings, state))
    env = configs["proxy"].env
    assert env["DATABASE_URL"] == f"postgresql://postgres:devenv@postgres:5432/{docker_runtime.DATABASE}"
    assert env["REDIS_CACHE_URL"] == env["REDIS_EVENT_URL"] == "rediss://redis:6380/0"  # TLS, as the stack
    assert env["REDIS_CA_FILE"] == "/tls/ca.crt"
    for name in ("proxy", "dispatcher"):
        assert configs[name].files["/tls/ca.crt"] == configs["redis"].files["/tls/ca.crt"]
    assert env["OPENAI_API_URL"] == "http://mock-upstream:8081/v1"
    assert env["LISTEN_ADDR"] == ":8080"
    assert configs["alb"].env["PROXY_UPSTREAM"] == "proxy"  # Caddy finds the proxy by its service name
    assert configs["alb"].files["/etc/caddy/Caddyfile"] == docker_runtime.CADDYFILE.read_bytes()
    assert configs["emulator"].env["DEVENV_POSTGRES_ADMIN_URL"].endswith("@postgres:5432/postgres")
    assert configs["emulator"].env["DEVENV_REDIS_ENDPOINT"] == "redis:6379"
    assert configs["postgres"].env["POSTGRES_DB"] == docker_runtime.DATABASE  # as Aurora creates it
    # the management token is the state dir's, so `devenv token create` works with either runtime
    assert env["MANAGEMENT_TOKEN"] == llmproxy.local_secrets(state)["MANAGEMENT_TOKEN"]
    assert "PATH" not in env  # nothing of the host's environment leaks into a container


def test_ports_are_published_on_loopback_at_the_settings_ports(settings: Settings, state: StateDir) -> None:
    configs = by_name(docker_runtime.stack(settings, state))
    assert configs["postgres"].port_bindings() == {"5432/tcp": ("127.0.0.1", settings.postgres_port)}
    assert configs["redis"].port_bindings() == {"6379/tcp": ("127.0.0.1", settings.redis_port)}
    assert configs["emulator"].port_bindings() == {"4566/tcp": ("127.0.0.1", settings.emulator_port)}
    assert configs["alb"].port_bindings() == {"8080/tcp": ("127.0.0.1", settings.alb_port)}
    assert configs["proxy"].port_bindings() == {} == configs["dispatcher"].port_bindings()  # behind the ALB
    assert configs["alb"].url == f"http://localhost:{settings.alb_port}"
    assert configs["emulator"].url == f"http://localhost:{settings.emulator_port}"


def test_a_busy_port_is_refused_or_replaced_with_auto_ports(settings: Settings, state: StateDir) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {taken} for redis"):
            docker_runtime.stack(settings.model_copy(update={"redis_port": taken}), state, infra_only=True)
        auto = settings.model_copy(update={"redis_port": taken, "auto_ports": True})
        redis_config = by_name(docker_runtime.stack(auto, state, infra_only=True))["redis"]
        assert redis_config.host_ports["redis"] != taken


def test_create_arguments_carry_health_restart_labels_and_data_volume(
    settings: Settings, state: StateDir
) -> None:
    configs = by_name(docker_runtime.stack(settings, state))
    pg = configs["postgres"].create_kwargs()
    assert pg["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert pg["healthcheck"]["interval"] == 1_000_000_000 and pg["healthcheck"]["retries"] == 30
    assert pg["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert pg["labels"][docker_runtime.LABEL_STATE_DIR] == str(state.root.resolve())
    assert configs["postgres"].volumes == {docker_runtime.postgres_volume(state): "/var/lib/postgresql"}
    assert "volumes" not in pg  # mounted through testcontainers, not a create argument
    assert pg["stop_signal"] == "SIGTERM" and configs["postgres"].stop_timeout_s == settings.stop_timeout_s
    assert configs["redis"].volumes == {}  # no persistence, as ElastiCache without a snapshot
    for config in configs.values():
        assert config.health is not None, f"{config.name} has no health check"
        if config.health.test[0] == "python":
            compile(config.health.test[2], config.name, "exec")  # the in-image check is valid Python


def test_container_names_are_per_state_dir(tmp_path: Path) -> None:
    one, two = StateDir(tmp_path / "a"), StateDir(tmp_path / "b")
    assert docker_runtime.container_name(one, "redis") == docker_runtime.container_name(
        StateDir(tmp_path / "a"), "redis"
    )
    assert docker_runtime.container_name(one, "redis") != docker_runtime.container_name(two, "redis")
    assert docker_runtime.postgres_volume(one) != docker_runtime.postgres_volume(two)


def test_health_check_in_docker_units() -> None:
    check = HealthCheck(("redis-cli", "ping"), interval_s=0.5, timeout_s=2, retries=3, start_period_s=1.5)
    assert check.to_docker() == {
        "test": ["CMD", "redis-cli", "ping"],
        "interval": 500_000_000,
        "timeout": 2_000_000_000,
        "retries": 3,
        "start_period": 1_500_000_000,
    }


def test_start_order_puts_dependencies_first_and_names_bad_ones(settings: Settings, state: StateDir) -> None:
    configs = docker_runtime.stack(settings, state)
    order = [c.name for c in docker_runtime.start_order(reversed(configs))]
    for config in configs:
        assert all(order.index(dep) < order.index(config.name) for dep in config.depends_on)

    def service(name: str, *deps: str) -> ContainerConfig:
        return ContainerConfig(name=name, image="x", container_name=name, depends_on=deps)

    with pytest.raises(ServiceFailedError, match="depends on unknown service 'nope'"):
        docker_runtime.start_order([service("a", "nope")])
    with pytest.raises(ServiceFailedError, match="cycle"):
        docker_runtime.start_order([service("a", "b"), service("b", "a")])


def test_task_container_is_what_the_realizer_asks_for(state: StateDir) -> None:
    task = docker_runtime.task_container(
        state,
        "proxy-task-1",
        "llmproxy:local",
        ["proxy"],
        {"LISTEN_ADDR": ":8080", "DATABASE_URL": "postgresql://x"},
        port=8080,
    )
    assert (task.image, task.command, task.env["LISTEN_ADDR"]) == ("llmproxy:local", ("proxy",), ":8080")
    assert task.port_bindings() == {"8080/tcp": ("127.0.0.1",)}  # Docker picks the host port
    assert task.container_name == docker_runtime.container_name(state, "proxy-task-1")
    assert task.stop_timeout_s == 30  # ECS's stopTimeout default
    assert docker_runtime.task_container(state, "worker", "img:1").port_bindings() == {}
    with pytest.raises(ValueError, match="names no image"):
        docker_runtime.task_container(state, "t", "")


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
    assert docker_runtime.local_image(named) == local
    assert docker_runtime.task_container(state, "t", named).image == local


def test_ecs_health_checks_become_docker_ones() -> None:
    shell = {"command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"], "interval": 10}
    assert docker_runtime.health_from_ecs(shell) == HealthCheck(
        ("sh", "-c", "curl -f http://localhost:8080/health || exit 1"), interval_s=10, timeout_s=5, retries=3
    )
    exec_form = {"command": ["CMD", "pg_isready"], "timeout": 2, "retries": 5, "startPeriod": 20}
    assert docker_runtime.health_from_ecs(exec_form) == HealthCheck(
        ("pg_isready",), interval_s=30, timeout_s=2, retries=5, start_period_s=20
    )
    assert docker_runtime.health_from_ecs(None) is None
    with pytest.raises(ValueError, match="CMD or CMD-SHELL"):
        docker_runtime.health_from_ecs({"command": ["NONE"]})


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"State": {"Status": "running", "Health": {"Status": "healthy"}}}, ("running", "healthy", None)),
        ({"State": {"Status": "running", "Health": {"Status": "starting"}}}, ("running", "starting", None)),
        ({"State": {"Status": "running"}}, ("running", "healthy", None)),
        ({"State": {"Status": "restarting", "ExitCode": 1}}, ("restarting", "unhealthy", 1)),
        ({"State": {"Status": "exited", "ExitCode": 0}}, ("stopped", "n/a", 0)),
        ({"State": {"Status": "exited", "ExitCode": 137}}, ("failed", "n/a", 137)),
        ({"State": {"Status": "created"}}, ("starting", "none", None)),
    ],
)
def test_observe_maps_docker_states(attrs: dict[str, object], expected: tuple[str, str, int | None]) -> None:
    assert docker_runtime.observe(attrs) == expected


def test_dispatcher_health_check_passes_only_with_a_consumer(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, state: StateDir, redis_url: str
) -> None:
    """The in-container check, run here against a real Redis: no group -> unhealthy; a consumer -> healthy."""
    check = by_name(docker_runtime.stack(settings, state))["dispatcher"].health
    assert check is not None and check.test[:2] == ("python", "-c")
    code = compile(check.test[2], "dispatcher-health", "exec")
    monkeypatch.setenv("REDIS_EVENT_URL", redis_url)
    client = redis_lib.Redis.from_url(redis_url)
    client.delete(docker_runtime.EVENT_STREAM)
    try:
        with pytest.raises(redis_lib.ResponseError):  # no stream, no group
            exec(code, {})
        client.xgroup_create(
            docker_runtime.EVENT_STREAM, docker_runtime.CONSUMER_GROUP, id="0", mkstream=True
        )
        with pytest.raises(AssertionError):  # a group with no consumer yet
            exec(code, {})
        client.xgroup_createconsumer(
            docker_runtime.EVENT_STREAM, docker_runtime.CONSUMER_GROUP, "dispatcher-1"
        )
        exec(code, {})
    finally:
        client.delete(docker_runtime.EVENT_STREAM)
        client.close()


def test_the_redis_container_command_serves_plain_and_tls_with_its_files(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, state: StateDir, tmp_path: Path
) -> None:
    """The container's redis-server arguments and files, run by a real redis-server on free ports."""
    redis_config = by_name(docker_runtime.stack(settings, state, infra_only=True))["redis"]
    folder = tmp_path / "tls"
    folder.mkdir()
    for path, content in redis_config.files.items():
        (folder / Path(path).name).write_bytes(content)
    plain, tls = free_port(), free_port()
    argv = [a.replace("/tls/", f"{folder}/") for a in redis_config.command]
    argv[argv.index("--tls-port") + 1] = str(tls)
    proc = subprocess.Popen([*argv, "--port", str(plain), "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
    try:
        secure = redis_lib.Redis.from_url(f"rediss://localhost:{tls}/0", ssl_ca_certs=str(folder / "ca.crt"))
        for _ in range(100):
            try:
                assert secure.ping()
                break
            except redis_lib.ConnectionError:
                assert proc.poll() is None, "redis-server exited"
                time.sleep(0.05)
        assert redis_lib.Redis(host="127.0.0.1", port=plain).ping()  # the emulator's and the host's port
        secure.xgroup_create(
            docker_runtime.EVENT_STREAM, docker_runtime.CONSUMER_GROUP, id="0", mkstream=True
        )
        secure.xgroup_createconsumer(docker_runtime.EVENT_STREAM, docker_runtime.CONSUMER_GROUP, "d-1")
        secure.close()
        # the dispatcher's health check speaks TLS with the CA file it is given
        check = by_name(docker_runtime.stack(settings, state))["dispatcher"].health
        assert check is not None
        monkeypatch.setenv("REDIS_EVENT_URL", f"rediss://localhost:{tls}/0")
        monkeypatch.setenv("REDIS_CA_FILE", str(folder / "ca.crt"))
        exec(compile(check.test[2], "dispatcher-health", "exec"), {})
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


def devenv_in_process(monkeypatch: pytest.MonkeyPatch, state: StateDir, *args: str) -> None:
    """The CLI without a process start (which costs seconds here); DevenvErrors propagate."""
    from devenv.cli.app import app

    monkeypatch.setenv("DEVENV_STATE_DIR", str(state.root))
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER_HOST)
    app(args=list(args), standalone_mode=False)


def docker_snapshot(state: StateDir, phase: str) -> dict[str, object]:
    config = docker_runtime.task_container(state, "redis", "redis:7", port=6379)
    running = docker_runtime.RunningContainer(
        config, state.log_for("redis"), state="running", health="healthy"
    )
    service = {**running.snapshot(), "container": "0123456789ab"}
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


def test_status_shows_containers_of_a_running_docker_supervisor(state: StateDir) -> None:
    import devenv.cli.app  # noqa: F401  (registers the commands before lifecycle is imported)
    from devenv.cli.lifecycle import status_document

    state.write(docker_snapshot(state, "ready"))
    lock = state.acquire_supervisor_lock()
    try:
        row = status_document(state)["services"][0]
    finally:
        lock.close()
    assert (row["name"], row["state"], row["health"]) == ("redis", "running", "healthy")
    assert status_document(state)["services"][0]["state"] == "stopped"  # no supervisor holds the lock


def test_down_after_a_clean_docker_run_needs_no_daemon(
    monkeypatch: pytest.MonkeyPatch, state: StateDir
) -> None:
    state.write(docker_snapshot(state, "stopped"))
    devenv_in_process(monkeypatch, state, "down")  # raises if it tried to reach Docker


def test_down_with_containers_left_behind_and_no_daemon_says_so(
    monkeypatch: pytest.MonkeyPatch, state: StateDir
) -> None:
    state.write(docker_snapshot(state, "ready"))  # a supervisor that died while running containers
    with pytest.raises(MissingDependencyError) as caught:
        devenv_in_process(monkeypatch, state, "down")
    assert "no Docker daemon answers now" in caught.value.message
    assert caught.value.hint is not None and "start Docker" in caught.value.hint


# -- running containers: only where a daemon answers -------------------------------------------


@pytest.fixture
def supervisor(state: StateDir) -> Iterator[docker_runtime.ContainerSupervisor]:
    events: list[tuple[str, str]] = []
    sup = docker_runtime.ContainerSupervisor(
        state, {"runtime": "docker"}, lambda n, s, d: events.append((n, s))
    )
    yield sup
    sup.stop_all()


@needs_daemon
def test_infrastructure_containers_start_healthy_log_and_stop(
    settings: Settings, state: StateDir, supervisor: docker_runtime.ContainerSupervisor
) -> None:
    configs = [c for c in docker_runtime.stack(settings, state, infra_only=True) if c.name != "emulator"]
    supervisor.start_all(configs, ready_timeout_s=120)
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
    stop = threading.Event()
    watcher = threading.Thread(target=supervisor.watch, args=(stop,))
    watcher.start()
    stop.set()
    watcher.join()
    assert state.log_for("redis").read_text().strip()
    ids = [s["container"] for s in snapshot["services"].values()]
    supervisor.stop_all()
    import docker

    api = docker.from_env()
    try:
        remaining = [c.id for c in api.containers.list(all=True) if c.id in ids]
    finally:
        api.close()
    assert remaining == []
    assert json.loads(state.state_file.read_text())["supervisor"]["phase"] == "stopped"


@needs_daemon
def test_a_task_container_publishes_a_port_docker_picked(
    state: StateDir, supervisor: docker_runtime.ContainerSupervisor
) -> None:
    task = docker_runtime.task_container(
        state, "cache-task", "redis:7", ["redis-server"], port=6379, health=HealthCheck(("redis-cli", "ping"))
    )
    supervisor.add(task, ready_timeout_s=120)
    port = supervisor.host_port("cache-task", 6379)
    client = redis_lib.Redis(host="127.0.0.1", port=port)
    assert client.ping()
    client.close()
    supervisor.remove("cache-task")
    assert "cache-task" not in state.read()["services"]
