"""The docker runtime: the services `devenv up` runs natively, as containers started through
testcontainers, recorded in the same state file so `status`, `logs` and `down` work unchanged.

Two halves. What runs is plain data (`ContainerConfig`: image, command, environment, published ports,
health check, dependencies), built without a daemon so it is unit-tested anywhere; `task_container`
is the realizer's way to turn an ECS task (image, command, env, port) into one. Running them needs a
daemon: `ContainerSupervisor` starts each container on a private network once its dependencies are
healthy (Docker's own health check, as compose's `service_healthy`), copies its output to the
service's log file, keeps the state file in step, and stops them in reverse order.

Containers reach each other by service name (`postgres`, `redis`, `emulator`, `mock-upstream`, `proxy`,
`alb`); the host reaches them on 127.0.0.1 at the ports the native runtime would use.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from devenv.config import Settings
from devenv.errors import MissingDependencyError, ServiceFailedError
from devenv.runtime.ports import claim
from devenv.runtime.state import StateDir, tail
from devenv.services import emulator, llmproxy
from stack import names

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    from devenv.cli.application import Application

POSTGRES_IMAGE = "postgres:18"  # major 18 everywhere: Aurora, compose, native
REDIS_IMAGE = "redis:7"
CADDY_IMAGE = "caddy:2"  # the ALB mirror, configured by compose/Caddyfile (one file for both)
CADDYFILE = Path(__file__).resolve().parents[2] / "compose" / "Caddyfile"
# compose's one-shot `redis-tls` job makes the Redis certificates with this script; so does this runtime.
MAKE_REDIS_CERTS = Path(__file__).resolve().parents[2] / "compose" / "make_redis_certs.py"
REDIS_TLS_PORT = 6380  # in the container; plain 6379 stays for the emulator and the host, as native
TLS_DIR = "/tls"
LLMPROXY_IMAGE = "llmproxy:local"
CLOUD_IMAGE = "devenv-cloud:local"
# The project's own images: tag -> (build context, Dockerfile), relative to the repository root.
PROJECT_IMAGES = {
    LLMPROXY_IMAGE: ("llmproxy", "llmproxy/Dockerfile"),
    CLOUD_IMAGE: (".", "dockerfiles/cloud.Dockerfile"),
}

DATABASE = names.DATABASE_NAME  # the database Aurora creates for the cluster
EVENT_STREAM = "llm-proxy-events"  # the event bus stream and the dispatchers' group (PROXY-CONTRACT.md)
CONSUMER_GROUP = "llm-proxy-dispatchers"

LABEL_STATE_DIR = "dev.devenv.state-dir"
LABEL_SERVICE = "dev.devenv.service"
POLL_INTERVAL_S = 1.0
NS_PER_S = 1_000_000_000

EventCallback = Callable[[str, str, str], None]


# -- what runs: plain data, no daemon needed ---------------------------------------------------


@dataclass(frozen=True)
class HealthCheck:
    """A Docker HEALTHCHECK: `test` is run inside the container (exec form)."""

    test: tuple[str, ...]
    interval_s: float = 1.0
    timeout_s: float = 3.0
    retries: int = 30
    start_period_s: float = 0.0

    def to_docker(self) -> dict[str, Any]:
        """The `healthcheck` argument of the Docker API (durations in nanoseconds)."""
        return {
            "test": ["CMD", *self.test],
            "interval": int(self.interval_s * NS_PER_S),
            "timeout": int(self.timeout_s * NS_PER_S),
            "retries": self.retries,
            "start_period": int(self.start_period_s * NS_PER_S),
        }


@dataclass(frozen=True)
class ContainerConfig:
    """One container: what the Docker API gets, plus how devenv shows and orders it."""

    name: str  # the service name: the network alias, the log file, the state file's key
    image: str
    container_name: str
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)  # port name -> container port
    host_ports: Mapping[str, int] = field(default_factory=dict)  # port name -> 127.0.0.1 port; 0 = any
    health: HealthCheck | None = None
    depends_on: tuple[str, ...] = ()
    url: str | None = None
    stop_timeout_s: float = 10.0
    volumes: Mapping[str, str] = field(default_factory=dict)  # named volume -> mount path
    labels: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)  # path in the container -> content
    kind: Literal["generic", "postgres", "redis"] = "generic"  # which testcontainers class runs it

    def port_bindings(self) -> dict[str, tuple[str, int | None] | tuple[str]]:
        """Docker's `ports`: container port -> (127.0.0.1, host port); never on every interface."""
        bindings: dict[str, tuple[str, int | None] | tuple[str]] = {}
        for port_name, container_port in self.ports.items():
            host = self.host_ports.get(port_name, 0)
            bindings[f"{container_port}/tcp"] = ("127.0.0.1", host) if host else ("127.0.0.1",)
        return bindings

    def create_kwargs(self) -> dict[str, Any]:
        """The Docker API's create arguments beyond image, command, env, ports and volumes."""
        kwargs: dict[str, Any] = {
            "labels": dict(self.labels),
            "restart_policy": {"Name": "on-failure", "MaximumRetryCount": 5},
            "stop_signal": "SIGTERM",  # the grace period is given when stopping (stop_timeout_s)
        }
        if self.health is not None:
            kwargs["healthcheck"] = self.health.to_docker()
        return kwargs


def state_key(state: StateDir) -> str:
    """A short stable id of the state dir: names containers so two checkouts never collide."""
    return hashlib.sha256(str(state.root.resolve()).encode()).hexdigest()[:10]


def container_name(state: StateDir, service: str) -> str:
    return f"devenv-{state_key(state)}-{service}"


def postgres_volume(state: StateDir) -> str:
    return f"devenv-{state_key(state)}-postgres-data"


def _labels(state: StateDir, service: str) -> dict[str, str]:
    return {LABEL_STATE_DIR: str(state.root.resolve()), LABEL_SERVICE: service}


def redis_tls_files(state: StateDir) -> dict[str, bytes]:
    """A local CA and a certificate for the `redis` host (made once per state dir), by file name."""
    folder = state.run / "docker-redis-tls"
    if not MAKE_REDIS_CERTS.is_file():
        raise MissingDependencyError(
            f"{MAKE_REDIS_CERTS} is missing", "run devenv from its source checkout (it holds compose/)"
        )
    spec = importlib.util.spec_from_file_location("make_redis_certs", MAKE_REDIS_CERTS)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.make(folder, ["redis", "localhost"])
    return {name: (folder / name).read_bytes() for name in ("ca.crt", "redis.crt", "redis.key")}


def _python_check(code: str) -> tuple[str, ...]:
    """A health check run by the image's Python (slim images have no curl)."""
    return ("python", "-c", code)


def _http_ok(port: int, path: str) -> tuple[str, ...]:
    return _python_check(
        f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=2)"
    )


def stack(settings: Settings, state: StateDir, infra_only: bool = False) -> list[ContainerConfig]:
    """Postgres, Redis and the local cloud; unless `infra_only`, the mock upstream, proxy, dispatcher and
    the ALB mirror (Caddy, the only way in to the proxy, as on AWS).

    The same services, ports and environment variable names as the native runtime (and the ECS task
    definitions), with container hostnames in the URLs the containers use.
    """
    user, password = settings.postgres_user, settings.postgres_password
    tls = redis_tls_files(state)
    pg_port = claim("postgres", "postgres_port", settings.postgres_port, settings.auto_ports)
    redis_port = claim("redis", "redis_port", settings.redis_port, settings.auto_ports)
    emulator_port = claim("emulator", "emulator_port", settings.emulator_port, settings.auto_ports)
    configs = [
        ContainerConfig(
            name="postgres",
            container_name=container_name(state, "postgres"),
            image=POSTGRES_IMAGE,
            kind="postgres",
            env={"POSTGRES_USER": user, "POSTGRES_PASSWORD": password, "POSTGRES_DB": DATABASE},
            ports={"postgres": 5432},
            host_ports={"postgres": pg_port},
            url=f"postgresql://{user}:{password}@127.0.0.1:{pg_port}/postgres",
            health=HealthCheck(("pg_isready", "-h", "127.0.0.1", "-U", user, "-d", DATABASE)),
            volumes={
                postgres_volume(state): "/var/lib/postgresql"
            },  # 18+: PGDATA in a versioned folder below
            stop_timeout_s=settings.stop_timeout_s,
            labels=_labels(state, "postgres"),
        ),
        ContainerConfig(
            name="redis",
            container_name=container_name(state, "redis"),
            image=REDIS_IMAGE,
            kind="redis",
            command=(
                "redis-server",
                *("--save", "", "--appendonly", "no"),
                *("--tls-port", str(REDIS_TLS_PORT), "--tls-auth-clients", "no"),
                *("--tls-cert-file", f"{TLS_DIR}/redis.crt", "--tls-key-file", f"{TLS_DIR}/redis.key"),
                *("--tls-ca-cert-file", f"{TLS_DIR}/ca.crt"),
            ),
            files={f"{TLS_DIR}/{name}": content for name, content in tls.items()},
            ports={"redis": 6379},
            host_ports={"redis": redis_port},
            url=f"redis://127.0.0.1:{redis_port}/0",
            health=HealthCheck(("redis-cli", "-h", "127.0.0.1", "ping")),
            stop_timeout_s=settings.stop_timeout_s,
            labels=_labels(state, "redis"),
        ),
        ContainerConfig(
            name="emulator",
            container_name=container_name(state, "emulator"),
            image=CLOUD_IMAGE,
            command=("--host", "0.0.0.0", "--port", "4566", "--region", settings.region),
            env={
                **emulator.CREDENTIALS,
                "AWS_REGION": settings.region,
                "AWS_DEFAULT_REGION": settings.region,
                "DEVENV_POSTGRES_ADMIN_URL": f"postgresql://{user}:{password}@postgres:5432/postgres",
                "DEVENV_REDIS_ENDPOINT": "redis:6379",
            },
            ports={"emulator": 4566},
            host_ports={"emulator": emulator_port},
            url=emulator.endpoint(emulator_port),
            health=HealthCheck(_http_ok(4566, "/moto-api/")),
            depends_on=("postgres", "redis"),
            stop_timeout_s=settings.stop_timeout_s,
            labels=_labels(state, "emulator"),
        ),
    ]
    if not infra_only:
        configs += application(settings, state)
    return configs


def application(settings: Settings, state: StateDir) -> list[ContainerConfig]:
    """The mock upstream, the proxy and the dispatcher (the llmproxy image), and the ALB mirror in front."""
    upstream_port = claim(
        "mock-upstream", "mock_upstream_port", settings.mock_upstream_port, settings.auto_ports
    )
    alb_port = claim("the ALB mirror", "alb_port", settings.alb_port, settings.auto_ports)
    try:
        caddyfile = CADDYFILE.read_bytes()
    except FileNotFoundError:
        raise MissingDependencyError(
            f"the ALB mirror's configuration {CADDYFILE} is missing",
            "run devenv from its source checkout (the docker runtime reads compose/Caddyfile)",
        ) from None
    user, password = settings.postgres_user, settings.postgres_password
    redis_url = f"rediss://redis:{REDIS_TLS_PORT}/0"  # TLS in transit, as ElastiCache in the stack
    ca_file = {f"{TLS_DIR}/ca.crt": redis_tls_files(state)["ca.crt"]}
    env = {
        "REDIS_CA_FILE": f"{TLS_DIR}/ca.crt",
        **llmproxy.local_secrets(state),  # the same MANAGEMENT_TOKEN as native: `devenv token create` works
        "DATABASE_URL": f"postgresql://{user}:{password}@postgres:5432/{DATABASE}",
        "REDIS_CACHE_URL": redis_url,
        "REDIS_EVENT_URL": redis_url,
        "OPENAI_API_URL": "http://mock-upstream:8081/v1",
        "LOG_LEVEL": "info",
    }
    consumers = (
        "import os, redis; "
        "tls = {'ssl_ca_certs': os.environ['REDIS_CA_FILE']} if 'REDIS_CA_FILE' in os.environ else {}; "
        f"groups = redis.Redis.from_url(os.environ['REDIS_EVENT_URL'], **tls).xinfo_groups('{EVENT_STREAM}'); "
        "assert any(g['consumers'] for g in groups)"
    )
    return [
        ContainerConfig(
            name="mock-upstream",
            container_name=container_name(state, "mock-upstream"),
            image=LLMPROXY_IMAGE,
            command=("mock-upstream", "--host", "0.0.0.0", "--port", "8081"),
            ports={"http": 8081},
            host_ports={"http": upstream_port},
            url=f"http://127.0.0.1:{upstream_port}/v1",
            health=HealthCheck(_http_ok(8081, "/health")),
            stop_timeout_s=settings.stop_timeout_s,
            labels=_labels(state, "mock-upstream"),
        ),
        ContainerConfig(
            name="proxy",
            container_name=container_name(state, "proxy"),
            image=LLMPROXY_IMAGE,
            files=ca_file,
            command=("proxy",),
            env={**env, "LISTEN_ADDR": ":8080"},  # reached through the ALB mirror only, as on AWS
            health=HealthCheck(_http_ok(8080, "/health")),
            depends_on=("postgres", "redis", "mock-upstream"),
            stop_timeout_s=settings.stop_timeout_s,
            labels=_labels(state, "proxy"),
        ),
        ContainerConfig(
            name="dispatcher",
            container_name=container_name(state, "dispatcher"),
            image=LLMPROXY_IMAGE,
            files=ca_file,
            command=("dispatcher",),
            env=env,
            health=HealthCheck(_python_check(consumers)),
            depends_on=("proxy",),  # the proxy applies the migrations the dispatcher writes through
            stop_timeout_s=settings.stop_timeout_s,
            labels=_labels(state, "dispatcher"),
        ),
        ContainerConfig(
            name="alb",
            container_name=container_name(state, "alb"),
            image=CADDY_IMAGE,
            env={"PROXY_UPSTREAM": "proxy"},
            files={"/etc/caddy/Caddyfile": caddyfile},
            ports={"http": 8080},
            host_ports={"http": alb_port},
            url=f"http://localhost:{alb_port}",
            health=HealthCheck(("wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health")),
            depends_on=("proxy",),
            stop_timeout_s=settings.stop_timeout_s,
            labels=_labels(state, "alb"),
        ),
    ]


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
    command: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    health: HealthCheck | None = None,
    stop_timeout_s: float = 30.0,
) -> ContainerConfig:
    """An ECS task as a container (for the realizer): the task definition's image (`local_image`),
    command and resolved environment; its container port published on 127.0.0.1 at a port Docker
    picks (read it back with `ContainerSupervisor.host_port`), for the load balancer to target.
    """
    if not image:
        raise ValueError(f"task {name}: the task definition names no image")
    return ContainerConfig(
        name=name,
        image=local_image(image),
        container_name=container_name(state, name),
        command=tuple(command),
        env=dict(env or {}),
        ports={"http": port} if port else {},
        host_ports={"http": 0} if port else {},
        health=health,
        stop_timeout_s=stop_timeout_s,
        labels=_labels(state, name),
    )


def facts(settings: Settings, state: StateDir, configs: list[ContainerConfig]) -> dict[str, Any]:
    """What `status` shows beside the services (as the native runtime's facts, runtime docker)."""
    emulator_port = next(c.host_ports["emulator"] for c in configs if c.name == "emulator")
    return {
        "region": settings.region,
        "credentials": dict(emulator.CREDENTIALS),
        "aws_env": emulator.sdk_env(settings, emulator_port),
        "state_dir": str(state.root),
        "runtime": "docker",
    }


def start_order(configs: Iterable[ContainerConfig]) -> list[ContainerConfig]:
    """Dependencies first; an unknown dependency or a cycle is an error naming it."""
    by_name = {c.name: c for c in configs}
    order: list[ContainerConfig] = []
    visiting: set[str] = set()

    def visit(name: str, wanted_by: str) -> None:
        if any(c.name == name for c in order):
            return
        if name not in by_name:
            raise ServiceFailedError(f"service {wanted_by} depends on unknown service {name!r}")
        if name in visiting:
            raise ServiceFailedError(f"services depend on each other in a cycle through {name!r}")
        visiting.add(name)
        for dep in by_name[name].depends_on:
            visit(dep, name)
        visiting.discard(name)
        order.append(by_name[name])

    for name in by_name:
        visit(name, name)
    return order


# -- running them: needs a daemon --------------------------------------------------------------


def missing_images(client: DockerClient, configs: Iterable[ContainerConfig]) -> list[str]:
    """The project's images (built here, never pulled) that this Docker has not got."""
    from docker.errors import ImageNotFound

    missing = []
    for image in sorted({c.image for c in configs if c.image in PROJECT_IMAGES}):
        try:
            client.images.get(image)
        except ImageNotFound:
            missing.append(image)
    return missing


def build_hint(images: Iterable[str]) -> str:
    commands = [f"docker build -f {PROJECT_IMAGES[i][1]} -t {i} {PROJECT_IMAGES[i][0]}" for i in images]
    return (
        "build them from the repository root: "
        + " && ".join(commands)
        + (" (or `docker compose -f compose/compose.yaml build`)")
    )


def _testcontainer(config: ContainerConfig, network: Network) -> DockerContainer:
    """The testcontainers object that runs `config` on `network` under its service name."""
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer
    from testcontainers.core.container import DockerContainer

    container: DockerContainer
    if config.kind == "postgres":
        container = PostgresContainer(
            config.image,
            username=config.env["POSTGRES_USER"],
            password=config.env["POSTGRES_PASSWORD"],
            dbname=config.env["POSTGRES_DB"],
            driver=None,
        )
    elif config.kind == "redis":
        container = RedisContainer(config.image)
    else:
        container = DockerContainer(config.image)
    if config.command:
        container.with_command(list(config.command))
    container.with_envs(**config.env)
    container.with_name(config.container_name)
    for port in config.ports.values():
        container.ports.pop(str(port), None)  # the classes expose "5432" unbound: keep only our binding
    container.ports.update(config.port_bindings())  # type: ignore[arg-type]  # docker-py takes (ip, port)
    for volume, path in config.volumes.items():
        container.with_volume_mapping(volume, path, "rw")  # a named volume: Docker creates it on first use
    for path, content in config.files.items():
        container.with_copy_into_container(content, path)  # copied before start: works with a remote daemon
    container.with_network(network).with_network_aliases(config.name)
    container.with_kwargs(**config.create_kwargs())
    return container


@dataclass
class RunningContainer:
    """A container the supervisor owns, and what it last saw of it."""

    config: ContainerConfig
    log_path: Path
    container: DockerContainer | None = None
    state: str = "starting"
    health: str = "unknown"
    health_detail: str = ""
    started_at: float | None = None
    restarts: int = 0
    exit_code: int | None = None

    @property
    def wrapped(self) -> Container | None:
        """The docker-py container, once Docker created it."""
        from testcontainers.core.exceptions import ContainerStartException

        if self.container is None:
            return None
        try:
            return self.container.get_wrapped_container()
        except ContainerStartException:
            return None

    def snapshot(self) -> dict[str, Any]:
        wrapped = self.wrapped
        return {
            "pid": None,  # a container has no pid of ours: `down` removes it by id, not by signal
            "container": wrapped.id if wrapped is not None else None,
            "container_name": self.config.container_name,
            "image": self.config.image,
            "ports": dict(self.config.host_ports),
            "url": self.config.url,
            "state": self.state,
            "health": self.health,
            "health_detail": self.health_detail,
            "started_at": self.started_at,
            "restarts": self.restarts,
            "exit_code": self.exit_code,
            "log": str(self.log_path),
            "depends_on": list(self.config.depends_on),
        }


def observe(attrs: Mapping[str, Any]) -> tuple[str, str, int | None]:
    """(state, health, exit code) as devenv names them, from `docker inspect` of a container."""
    status = attrs.get("State", {})
    health = (status.get("Health") or {}).get("Status", "none")
    docker_state = status.get("Status", "unknown")
    exit_code = status.get("ExitCode")
    if docker_state == "running":
        return "running", "healthy" if health in ("healthy", "none") else health, None
    if docker_state == "restarting":
        return "restarting", "unhealthy", exit_code
    if docker_state in ("exited", "dead"):
        return ("stopped" if exit_code == 0 else "failed"), "n/a", exit_code
    return "starting", health, None


class ContainerSupervisor:
    """Starts `ContainerConfig`s on a private network, watches them, and keeps the state file in step.

    The same contract as the native `Supervisor` (start_all / add / remove / watch / stop_all), so
    `status`, `logs` and `down` read one state file whatever ran the services.
    """

    def __init__(
        self, state_dir: StateDir, facts: dict[str, Any], on_event: EventCallback | None = None
    ) -> None:
        self.state_dir = state_dir
        self.facts = facts
        self.on_event = on_event or (lambda name, state, detail: None)
        self.services: dict[str, RunningContainer] = {}
        self.phase = "starting"
        self.error: str | None = None
        self.network: Network | None = None
        self._lock = threading.RLock()

    def start_all(self, configs: Iterable[ContainerConfig], ready_timeout_s: float = 60.0) -> None:
        """Start each container once its dependencies are healthy; on a failure stop all and raise."""
        ordered = start_order([*(r.config for r in self.services.values()), *configs])
        fresh = [c for c in ordered if c.name not in self.services]
        from docker import from_env
        from docker.errors import DockerException

        try:
            client = from_env()
            try:
                missing = missing_images(client, fresh)
            finally:
                client.close()
        except DockerException as exc:
            raise MissingDependencyError(
                f"the Docker daemon does not answer: {exc}", "start Docker, or use --runtime native"
            ) from exc
        if missing:
            raise MissingDependencyError(
                f"the project image(s) {', '.join(missing)} are not built in this Docker", build_hint(missing)
            )
        with self._lock:
            for config in fresh:
                self.services[config.name] = RunningContainer(config, self.state_dir.log_for(config.name))
        self._write_state()
        for config in fresh:
            self._start(self.services[config.name], ready_timeout_s)

    def add(self, config: ContainerConfig, ready_timeout_s: float = 60.0) -> None:
        """Start one more container now (the realizer adds tasks this way)."""
        self.start_all([config], ready_timeout_s)

    def host_port(self, name: str, container_port: int) -> int:
        """The 127.0.0.1 port Docker published `container_port` of service `name` on."""
        wrapped = self.services[name].wrapped
        if wrapped is None:
            raise ServiceFailedError(f"{name} is not running")
        wrapped.reload()
        bindings = wrapped.attrs["NetworkSettings"]["Ports"].get(f"{container_port}/tcp") or []
        if not bindings:
            raise ServiceFailedError(f"{name} publishes no port for {container_port}/tcp")
        return int(bindings[0]["HostPort"])

    def _network(self) -> Network:
        if self.network is None:
            from testcontainers.core.network import Network

            self.network = Network(
                docker_network_kw={"labels": {LABEL_STATE_DIR: str(self.state_dir.root.resolve())}}
            ).create()
        return self.network

    def _start(self, running: RunningContainer, ready_timeout_s: float) -> None:
        config = running.config
        began = time.monotonic()
        self._set(running, "starting", "")
        running.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(running.log_path, "ab") as log:
            log.write(
                f"--- devenv: starting container {config.container_name} ({config.image}) ---\n".encode()
            )
        try:
            running.container = _testcontainer(config, self._network())
            running.container.start()
        except Exception as exc:  # the Docker API's errors are many; each becomes the service's failure
            self._set(running, "failed", str(exc))
            raise ServiceFailedError(
                f"{config.name} could not be started: {exc}", f"read the log with `devenv logs {config.name}`"
            ) from exc
        running.started_at = time.time()
        threading.Thread(
            target=self._copy_logs, args=(running,), name=f"logs-{config.name}", daemon=True
        ).start()
        detail = self._wait_healthy(running, ready_timeout_s)
        if running.health != "healthy":
            self._set(running, "failed", detail)
            raise ServiceFailedError(
                f"{config.name} did not become healthy: {detail}\n--- last lines of {running.log_path} ---\n"
                f"{tail(running.log_path)}",
                f"read the whole log with `devenv logs {config.name}`",
            )
        self._set(running, "running", f"ready in {time.monotonic() - began:.2f} s")

    def _wait_healthy(self, running: RunningContainer, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            self._refresh(running)
            if running.health == "healthy" or running.state in ("failed", "stopped"):
                return running.health_detail
            if time.monotonic() >= deadline:
                return f"not healthy after {timeout_s:.0f} s (health: {running.health})"
            time.sleep(0.2)

    def _refresh(self, running: RunningContainer) -> bool:
        """Re-read the container; True when what `status` shows changed."""
        from docker.errors import DockerException

        wrapped = running.wrapped
        if wrapped is None:
            return False
        before = (running.state, running.health, running.restarts)
        try:
            wrapped.reload()
        except DockerException as exc:
            running.state, running.health, running.health_detail = "failed", "n/a", f"container gone: {exc}"
            return before != (running.state, running.health, running.restarts)
        state, health, exit_code = observe(wrapped.attrs)
        running.state, running.health, running.exit_code = state, health, exit_code
        running.restarts = int(wrapped.attrs.get("RestartCount", 0))
        probes = (wrapped.attrs.get("State", {}).get("Health") or {}).get("Log") or []
        if probes:
            last = probes[-1]
            running.health_detail = (
                f"exit {last.get('ExitCode')}: {str(last.get('Output', '')).strip()[-200:]}"
            )
        elif exit_code is not None:
            running.health_detail = f"exited with code {exit_code}"
        return before != (running.state, running.health, running.restarts)

    def _copy_logs(self, running: RunningContainer) -> None:
        """Append the container's output to its log file until the container goes away."""
        from docker.errors import DockerException

        wrapped = running.wrapped
        if wrapped is None:
            return
        with contextlib.suppress(DockerException, OSError), open(running.log_path, "ab") as log:
            for chunk in wrapped.logs(stream=True, follow=True):
                log.write(chunk)
                log.flush()

    def watch(self, stop: threading.Event) -> None:
        """Until `stop` is set: refresh each container's state and health (Docker restarts them)."""
        self.phase = "ready"
        self._write_state()
        while not stop.wait(POLL_INTERVAL_S):
            with self._lock:
                services = list(self.services.values())
            changed = [r for r in services if self._refresh(r)]
            for running in changed:
                self.on_event(running.config.name, running.state, running.health_detail)
            if changed:
                self._write_state()

    def remove(self, name: str) -> None:
        """Stop one container and forget it (the realizer removes tasks this way)."""
        running = self.services.get(name)
        if running is None:
            return
        self._set(running, "stopping", "")
        self._stop(running)
        with self._lock:
            self.services.pop(name, None)
        self._write_state()

    def stop_all(self) -> None:
        """Stop every container (dependents first: SIGTERM, the grace period, SIGKILL), then the network."""
        self.phase = "stopping"
        self._write_state()
        for config in reversed(start_order(r.config for r in self.services.values())):
            running = self.services[config.name]
            self._set(running, "stopping", "")
            self._stop(running)
            self._set(running, "stopped", "")
        if self.network is not None:
            from docker.errors import DockerException

            with contextlib.suppress(DockerException):
                self.network.remove()
            self.network = None
        self.phase = "stopped"
        self._write_state()

    def _stop(self, running: RunningContainer) -> None:
        from docker.errors import DockerException

        wrapped = running.wrapped
        if wrapped is None:
            return
        with contextlib.suppress(DockerException):
            wrapped.stop(timeout=int(running.config.stop_timeout_s))
            wrapped.reload()
            running.exit_code = wrapped.attrs.get("State", {}).get("ExitCode")
        with contextlib.suppress(DockerException):
            wrapped.remove(v=False)  # named volumes (Postgres data) stay until `down --volumes`

    def _set(self, running: RunningContainer, state: str, detail: str) -> None:
        running.state = state
        self._write_state()
        self.on_event(running.config.name, state, detail)

    def _write_state(self) -> None:
        with self._lock:
            services = {name: r.snapshot() for name, r in self.services.items()}
        self.state_dir.write(
            {
                "supervisor": {
                    "pid": os.getpid(),
                    "phase": self.phase,
                    "error": self.error,
                    "updated_at": time.time(),
                },
                "services": services,
                "facts": self.facts,
            }
        )


def up_foreground(
    app: Application,
    state: StateDir,
    infra_only: bool,
    detached_child: bool,
    report: Callable[[Application, StateDir, str], None],
    on_event: EventCallback,
) -> None:
    """`devenv up --runtime docker` in this process: start, report, watch until SIGINT/SIGTERM, stop."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    state.ensure()
    configs = stack(app.settings, state, infra_only)
    supervisor = ContainerSupervisor(state, facts(app.settings, state, configs), on_event=on_event)
    try:
        supervisor.start_all(configs, app.settings.ready_timeout_s)
    except (ServiceFailedError, MissingDependencyError) as exc:
        supervisor.phase, supervisor.error = "failed", exc.message
        supervisor.stop_all()
        raise
    if not detached_child:
        report(app, state, f"all containers healthy in {time.monotonic() - started:.2f} s")
        app.info("[dim]Ctrl-C stops everything.[/]")
    try:
        supervisor.watch(stop)
    finally:
        app.info("stopping…")
        supervisor.stop_all()
        app.info("[green]stopped[/]")


def clean_up(state: StateDir, snapshot: Mapping[str, Any], volumes: bool, grace_s: float) -> int:
    """For `devenv down`: remove the containers a dead supervisor left behind (by the ids it recorded),
    and with `volumes` the Postgres data volume. Returns how many containers it removed."""
    from docker import from_env
    from docker.errors import DockerException, NotFound

    if state.read().get("supervisor", {}).get("phase") == "stopped" and not volumes:
        return 0  # the supervisor removed its containers on the way out
    try:
        client = from_env()
    except DockerException as exc:
        raise MissingDependencyError(
            f"the last `devenv up` ran containers, but no Docker daemon answers now: {exc}",
            "start Docker, then run `devenv down` again",
        ) from exc
    removed = 0
    try:
        for svc in snapshot.get("services", {}).values():
            if not svc.get("container"):
                continue
            try:
                container = client.containers.get(svc["container"])
            except NotFound:
                continue
            with contextlib.suppress(DockerException):
                container.stop(timeout=int(grace_s))
            container.remove(force=True)
            removed += 1
        if volumes:
            with contextlib.suppress(NotFound):
                client.volumes.get(postgres_volume(state)).remove(force=True)
    finally:
        client.close()
    return removed
