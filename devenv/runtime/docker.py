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

from devenv.errors import MissingDependencyError
from devenv.runtime import probes
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import RestartPolicy, ServiceSpec

if TYPE_CHECKING:
    from docker import DockerClient


LLMPROXY_IMAGE = "llmproxy:local"
CLOUD_IMAGE = "devenv-cloud:local"
# The project's own images: tag -> (build context, Dockerfile), relative to the repository root.
PROJECT_IMAGES = {
    LLMPROXY_IMAGE: ("llmproxy", "llmproxy/Dockerfile"),
    CLOUD_IMAGE: (".", "dockerfiles/cloud.Dockerfile"),
}
TLS_DIR = "/tls"
CLOUD_DATA_DIR = "/var/lib/devenv-cloud"  # owned by the image's user: a fresh named volume inherits it
LABEL_STATE_DIR = "dev.devenv.state-dir"
LABEL_SERVICE = "dev.devenv.service"
NS_PER_S = 1_000_000_000
CONTAINER_PROCESS = "devenv.runtime.container_process"  # the module a container's supervised process runs
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


# -- as services of the supervisor -------------------------------------------------------------


def _config_path(state: StateDir, name: str) -> Path:
    return state.run / "containers" / f"{name}.json"


def process_argv(state: StateDir, config: ContainerConfig) -> list[str]:
    """The command that runs `config` in the foreground (its configuration written under run/)."""
    path = _config_path(state, config.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)  # it holds the task's resolved secrets, as the process environment would
    path.write_text(config.to_json())
    return [sys.executable, "-m", CONTAINER_PROCESS, str(path)]


def runs_container(argv: list[str]) -> bool:
    """Whether a supervised service's argv is a container process (`process_argv`)."""
    return argv[1:3] == ["-m", CONTAINER_PROCESS]


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


LOCAL_ONLY_PREFIX = "devenv-base/"  # the air-gapped stand-ins for public images: built here, never pulled
BUILD_COMMAND = "uv run python -m devenv.services.images build"


def build_hint(images: Iterable[str]) -> str:
    commands = [f"docker build -f {PROJECT_IMAGES[i][1]} -t {i} {PROJECT_IMAGES[i][0]}" for i in images]
    return f"build them from the repository root: `{BUILD_COMMAND}` (or " + " && ".join(commands) + ")"


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
        missing_stand_ins: list[str] = []
        missing_public: list[str] = []
        for image in sorted(set(images)):
            try:
                client.images.get(image)
            except ImageNotFound:
                if image in PROJECT_IMAGES:
                    missing_project.append(image)
                elif image.startswith(LOCAL_ONLY_PREFIX):
                    missing_stand_ins.append(image)
                else:
                    missing_public.append(image)
        if missing_project:
            raise MissingDependencyError(
                f"the project image(s) {', '.join(missing_project)} are not built in this Docker",
                build_hint(missing_project),
            )
        if missing_stand_ins:
            raise MissingDependencyError(
                f"the air-gapped image(s) {', '.join(missing_stand_ins)} are not built in this Docker",
                f"build them: `{BUILD_COMMAND} --air-gapped` (or unset the variables naming them)",
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
