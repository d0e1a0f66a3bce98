"""The docker runtime: the services and ECS tasks `devenv up` runs natively, run from their images.

One supervisor for both runtimes. Under `--runtime docker` a service's process is
`python -m devenv.runtime.container_process CONFIG` (one container in the foreground, see that module),
so the native supervisor starts, probes, restarts, logs and stops containers exactly as it does local
processes, and `status`, `logs` and `down` read one state file whatever ran the services.

Containers use the host's network: each listens on 127.0.0.1 at the port the native service would,
so the endpoints the emulator advertises (the Aurora and ElastiCache fault proxies, the ALB mirror's
targets) are the same for a container task as for a local process. That needs Docker on Linux, or
Docker Desktop 4.34+ with host networking turned on. Compose (compose/) is the bridge-network path.

What runs is plain data (`ContainerConfig`), built without a daemon so it is tested anywhere.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devenv.config import Settings
from devenv.errors import MissingDependencyError
from devenv.runtime import probes
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import RestartPolicy, ServiceSpec
from devenv.services import emulator, postgres
from stack import names

if TYPE_CHECKING:
    from docker import DockerClient

    from devenv.services import Ports
    from devenv.services.tls import TlsFiles

POSTGRES_IMAGE = f"postgres:{postgres.PINNED_MAJOR}"  # major 18 everywhere: Aurora, compose, native
REDIS_IMAGE = "redis:7"
LLMPROXY_IMAGE = "llmproxy:local"
CLOUD_IMAGE = "devenv-cloud:local"
# The project's own images: tag -> (build context, Dockerfile), relative to the repository root.
PROJECT_IMAGES = {
    LLMPROXY_IMAGE: ("llmproxy", "llmproxy/Dockerfile"),
    CLOUD_IMAGE: (".", "dockerfiles/cloud.Dockerfile"),
}
# The stack's ECR repository (and the image's own name) -> the image built here under that name.
LOCAL_REPOSITORIES = {names.ECR_REPOSITORY_NAME: "llmproxy", "llmproxy": "llmproxy"}

TLS_DIR = "/tls"
CLOUD_DATA_DIR = "/var/lib/devenv-cloud"  # owned by the image's user: a fresh named volume inherits it
LABEL_STATE_DIR = "dev.devenv.state-dir"
LABEL_SERVICE = "dev.devenv.service"
NS_PER_S = 1_000_000_000
STOP_MARGIN_S = 5.0  # the supervisor waits this much beyond the container's own stop timeout


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
    """One container on the host network: what the Docker API gets to create and start it."""

    name: str  # the service name: the log file and the state file's key
    image: str
    container_name: str
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    # Devenv probes readiness from the host; a check here is what `docker ps` shows. None = no check
    # (the llmproxy image's own probes :8080, where a task on the host network does not listen).
    health: HealthCheck | None = None
    stop_timeout_s: float = 10.0
    volumes: Mapping[str, str] = field(default_factory=dict)  # named volume -> mount path
    labels: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)  # path in the container -> content

    def create_kwargs(self) -> dict[str, Any]:
        """The Docker API's create arguments beyond image, command, env, name and volumes."""
        return {
            "network_mode": "host",
            "labels": dict(self.labels),
            "stop_signal": "SIGTERM",  # the grace period is given when stopping (stop_timeout_s)
            "healthcheck": self.health.to_docker() if self.health else {"test": ["NONE"]},
        }

    def to_json(self) -> str:
        document = asdict(self)
        document["files"] = {path: base64.b64encode(data).decode() for path, data in self.files.items()}
        return json.dumps(document)

    @classmethod
    def from_json(cls, text: str) -> ContainerConfig:
        document = json.loads(text)
        health = document.pop("health")
        return cls(
            **{
                **document,
                "command": tuple(document["command"]),
                "files": {path: base64.b64decode(data) for path, data in document["files"].items()},
                "health": HealthCheck(**{**health, "test": tuple(health["test"])}) if health else None,
            }
        )


def state_key(state: StateDir) -> str:
    """A short stable id of the state dir: names containers so two checkouts never collide."""
    return hashlib.sha256(str(state.root.resolve()).encode()).hexdigest()[:10]


def container_name(state: StateDir, service: str) -> str:
    return f"devenv-{state_key(state)}-{service}"


def data_volumes(state: StateDir) -> dict[str, str]:
    """The named volumes holding data (`down --volumes` deletes them), by what they hold."""
    key = state_key(state)
    return {"postgres": f"devenv-{key}-postgres-data", "emulator": f"devenv-{key}-cloud-data"}


def labels(state: StateDir, service: str) -> dict[str, str]:
    return {LABEL_STATE_DIR: str(state.root.resolve()), LABEL_SERVICE: service}


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


def _tls_files(tls: TlsFiles, with_key: bool) -> dict[str, bytes]:
    """devenv's CA (and the server certificate and key) copied into a container under /tls."""
    files = {f"{TLS_DIR}/ca.crt": tls.ca_cert.read_bytes()}
    if with_key:
        files[f"{TLS_DIR}/server.crt"] = tls.server_cert.read_bytes()
        files[f"{TLS_DIR}/server.key"] = tls.server_key.read_bytes()
    return files


def postgres_container(settings: Settings, state: StateDir, port: int) -> ContainerConfig:
    """Postgres 18 on 127.0.0.1:`port`, as the native one; its data in a named volume."""
    return ContainerConfig(
        name="postgres",
        image=POSTGRES_IMAGE,
        container_name=container_name(state, "postgres"),
        command=(
            *("postgres", "-p", str(port), "-c", "listen_addresses=127.0.0.1"),
            *("-c", "fsync=off", "-c", "max_connections=200"),
        ),
        env={"POSTGRES_USER": settings.postgres_user, "POSTGRES_PASSWORD": settings.postgres_password},
        health=HealthCheck(("pg_isready", "-h", "127.0.0.1", "-p", str(port), "-U", settings.postgres_user)),
        volumes={data_volumes(state)["postgres"]: "/var/lib/postgresql"},  # 18+: PGDATA in a folder below
        stop_timeout_s=settings.stop_timeout_s,
        labels=labels(state, "postgres"),
    )


def redis_container(
    settings: Settings, state: StateDir, port: int, tls_port: int, tls: TlsFiles
) -> ContainerConfig:
    """Redis 7, plain on `port` and TLS on `tls_port` with devenv's certificate, as the native one."""
    return ContainerConfig(
        name="redis",
        image=REDIS_IMAGE,
        container_name=container_name(state, "redis"),
        command=(
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--tls-port", str(tls_port), "--tls-auth-clients", "no"),
            *("--tls-cert-file", f"{TLS_DIR}/server.crt", "--tls-key-file", f"{TLS_DIR}/server.key"),
            *("--tls-ca-cert-file", f"{TLS_DIR}/ca.crt"),
        ),
        files=_tls_files(tls, with_key=True),
        health=HealthCheck(("redis-cli", "-h", "127.0.0.1", "-p", str(port), "ping")),
        stop_timeout_s=settings.stop_timeout_s,
        labels=labels(state, "redis"),
    )


def emulator_container(
    settings: Settings, state: StateDir, port: int, env: Mapping[str, str]
) -> ContainerConfig:
    """The local cloud image running the extended emulator; its generated secrets in a named volume
    (kept across restarts, as the Postgres data they open is)."""
    return ContainerConfig(
        name="emulator",
        image=CLOUD_IMAGE,
        container_name=container_name(state, "emulator"),
        command=("--host", "127.0.0.1", "--port", str(port), "--region", settings.region),
        env={**env, "DEVENV_GENERATED_SECRETS": f"{CLOUD_DATA_DIR}/generated-secrets.json"},
        volumes={data_volumes(state)["emulator"]: CLOUD_DATA_DIR},
        stop_timeout_s=settings.stop_timeout_s,
        labels=labels(state, "emulator"),
    )


def mock_upstream_container(settings: Settings, state: StateDir, port: int) -> ContainerConfig:
    return ContainerConfig(
        name="mock-upstream",
        image=LLMPROXY_IMAGE,
        container_name=container_name(state, "mock-upstream"),
        command=("mock-upstream", "--host", "127.0.0.1", "--port", str(port)),
        stop_timeout_s=settings.stop_timeout_s,
        labels=labels(state, "mock-upstream"),
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


# -- as services of the supervisor -------------------------------------------------------------


def _config_path(state: StateDir, name: str) -> Path:
    return state.run / "containers" / f"{name}.json"


def process_argv(state: StateDir, config: ContainerConfig) -> list[str]:
    """The command that runs `config` in the foreground (its configuration written under run/)."""
    path = _config_path(state, config.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)  # it holds the task's resolved secrets, as the process environment would
    path.write_text(config.to_json())
    return [sys.executable, "-m", "devenv.runtime.container_process", str(path)]


def container_pid(state: StateDir, name: str) -> int | None:
    """The host pid of a running container's main process, when the container process could tell it
    (a local Linux daemon); None otherwise."""
    try:
        return int(_config_path(state, name).with_suffix(".pid").read_text())
    except (OSError, ValueError):
        return None


def service(
    state: StateDir,
    config: ContainerConfig,
    ready: probes.Probe,
    ports: dict[str, int],
    url: str | None,
    ready_timeout_s: float,
    restart: RestartPolicy,
    depends_on: tuple[str, ...] = (),
) -> ServiceSpec:
    """A supervised service whose process is the container `config`."""
    return ServiceSpec(
        name=config.name,
        argv=process_argv(state, config),
        ready=ready,
        ports=ports,
        url=url,
        depends_on=depends_on,
        ready_timeout_s=ready_timeout_s,
        stop_timeout_s=config.stop_timeout_s + STOP_MARGIN_S,
        restart=restart,
        extra={"image": config.image, "container_name": config.container_name},
    )


def infrastructure(settings: Settings, state: StateDir, ports: Ports, tls: TlsFiles) -> list[ServiceSpec]:
    """Postgres, Redis and the emulator from their images, on the ports and with the settings of the
    native services (`devenv.services.infrastructure`)."""
    emulator_env = emulator.environment(
        settings,
        postgres.admin_url(settings, ports.postgres),
        postgres_endpoint=f"127.0.0.1:{ports.aurora or ports.postgres}",
        redis_endpoint=f"127.0.0.1:{ports.elasticache or ports.redis}",
    )
    on_failure = RestartPolicy(mode="on-failure")
    return [
        service(
            state,
            postgres_container(settings, state, ports.postgres),
            ready=probes.all_of(
                probes.tcp("127.0.0.1", ports.postgres),
                probes.command(
                    [
                        str(postgres.bin_dir(settings) / "pg_isready"),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(ports.postgres),
                        "-q",
                    ]
                ),
            ),
            ports={"postgres": ports.postgres},
            url=postgres.admin_url(settings, ports.postgres),
            ready_timeout_s=settings.ready_timeout_s,
            restart=on_failure,
        ),
        service(
            state,
            redis_container(settings, state, ports.redis, ports.redis_tls, tls),
            ready=probes.tcp_exchange("127.0.0.1", ports.redis, b"PING\r\n", b"+PONG"),
            ports={"redis": ports.redis, "tls": ports.redis_tls},
            url=f"redis://127.0.0.1:{ports.redis}/0",
            ready_timeout_s=settings.ready_timeout_s,
            restart=on_failure,
        ),
        service(
            state,
            emulator_container(settings, state, ports.emulator, emulator_env),
            ready=probes.http(f"http://127.0.0.1:{ports.emulator}/moto-api/"),
            ports={"emulator": ports.emulator},
            url=emulator.endpoint(ports.emulator),
            ready_timeout_s=settings.ready_timeout_s,
            restart=on_failure,
            depends_on=("postgres", "redis"),
        ),
    ]


def application(settings: Settings, state: StateDir, ports: Ports) -> list[ServiceSpec]:
    """The mock OpenAI upstream from the llmproxy image (the realizer runs the stack's tasks)."""
    assert ports.mock_upstream is not None
    port = ports.mock_upstream
    return [
        service(
            state,
            mock_upstream_container(settings, state, port),
            ready=probes.http(f"http://127.0.0.1:{port}/health"),
            ports={"http": port},
            url=f"http://127.0.0.1:{port}/v1",
            ready_timeout_s=settings.ready_timeout_s,
            restart=RestartPolicy(mode="on-failure"),
        )
    ]


# -- the daemon --------------------------------------------------------------------------------


def _client() -> DockerClient:
    from docker import from_env
    from docker.errors import DockerException

    try:
        return from_env()
    except DockerException as exc:
        raise MissingDependencyError(
            f"the Docker daemon does not answer: {exc}", "start Docker, or use --runtime native"
        ) from exc


def build_hint(images: Iterable[str]) -> str:
    commands = [f"docker build -f {PROJECT_IMAGES[i][1]} -t {i} {PROJECT_IMAGES[i][0]}" for i in images]
    return "build them from the repository root: " + " && ".join(commands)


def check_host_networking(info: Mapping[str, Any], say: Callable[[str], None]) -> None:
    """Containers share 127.0.0.1 with devenv only on a rootful daemon of this machine (or Docker
    Desktop with host networking on): refuse a rootless daemon, remind Docker Desktop users."""
    if any("rootless" in option for option in info.get("SecurityOptions") or []):
        raise MissingDependencyError(
            "this Docker daemon runs rootless: its host network is not this machine's 127.0.0.1, "
            "where --runtime docker runs every service",
            "use --runtime native (or the compose files, which need no host networking)",
        )
    if "Docker Desktop" in str(info.get("OperatingSystem", "")):
        say(
            "Docker Desktop: --runtime docker needs host networking turned on "
            "(Settings > Resources > Network > Enable host networking, Docker Desktop 4.34+)"
        )


def ensure_images(images: Iterable[str], say: Callable[[str], None]) -> None:
    """Before anything starts: the project's images must be built here (never pulled); a public
    image this Docker lacks is pulled now, with a message, not inside a readiness deadline."""
    from docker.errors import DockerException, ImageNotFound

    client = _client()
    try:
        check_host_networking(client.info(), say)
        missing_project: list[str] = []
        missing_public: list[str] = []
        for image in sorted(set(images)):
            try:
                client.images.get(image)
            except ImageNotFound:
                (missing_project if image in PROJECT_IMAGES else missing_public).append(image)
        if missing_project:
            raise MissingDependencyError(
                f"the project image(s) {', '.join(missing_project)} are not built in this Docker",
                build_hint(missing_project),
            )
        for image in missing_public:
            say(f"pulling {image}…")
            try:
                client.images.pull(image)
            except DockerException as exc:
                raise MissingDependencyError(
                    f"could not pull {image}: {exc}", f"pull it yourself: docker pull {image}"
                ) from exc
    finally:
        client.close()


def clean_up(state: StateDir, volumes: bool) -> int:
    """For `devenv down`: remove the containers of this state dir a killed process left behind, and
    with `volumes` its data volumes. Returns how many containers it removed."""
    from docker.errors import DockerException, NotFound

    if state.read().get("supervisor", {}).get("phase") == "stopped" and not volumes:
        return 0  # each container process removed its container on the way out: no daemon needed
    client = _client()
    removed = 0
    try:
        owned = client.containers.list(
            all=True, filters={"label": f"{LABEL_STATE_DIR}={state.root.resolve()}"}
        )
        for container in owned:
            with contextlib.suppress(NotFound):
                container.remove(force=True, v=True)  # its anonymous volumes; named ones below
                removed += 1
        if volumes:
            for volume in data_volumes(state).values():
                with contextlib.suppress(NotFound):
                    client.volumes.get(volume).remove(force=True)
    except DockerException as exc:
        raise MissingDependencyError(
            f"Docker refused to remove devenv's containers: {exc}", "remove them with `docker rm -f`"
        ) from exc
    finally:
        client.close()
    return removed
