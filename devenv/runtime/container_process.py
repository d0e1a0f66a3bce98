"""One container as a foreground process: what the supervisor runs for a service under the docker runtime.

`python -m devenv.runtime.container_process CONFIG.json` creates the container (testcontainers), copies
the container's output to stdout (the service's log file), and lives as long as the container: SIGTERM
or SIGINT stop it with its stop timeout (Docker sends SIGTERM, then SIGKILL), the container is removed,
and the exit code is the container's. So the supervisor's start, readiness, restart and stop work on
containers unchanged. Should this process be killed outright, the container stays until the next start
of the same service (which replaces it) or `devenv down` (which removes every container labelled with
the state dir): no testcontainers reaper, which would be one more container per service.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from devenv.runtime.docker import ContainerConfig

if TYPE_CHECKING:
    from docker.models.containers import Container
    from testcontainers.core.container import DockerContainer

EXIT_DOCKER_ERROR = 125  # as `docker run` exits when Docker itself fails


def testcontainer(config: ContainerConfig) -> DockerContainer:
    """The testcontainers object that creates `config` (on the host network)."""
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer

    testcontainers_config.ryuk_disabled = True  # see the module's docstring

    container = DockerContainer(config.image)
    if config.command:
        container.with_command(list(config.command))
    container.with_envs(**config.env)
    container.with_name(config.container_name)
    for volume, path in config.volumes.items():
        container.with_volume_mapping(volume, path, "rw")  # a named volume: Docker creates it on first use
    for path, content in config.files.items():
        container.with_copy_into_container(content, path)  # copied before start: works with a remote daemon
    container.with_kwargs(**config.create_kwargs())
    return container


def remove_stale(config: ContainerConfig) -> None:
    """A container of the same name left by a killed run would block the name: remove it."""
    from docker import from_env
    from docker.errors import NotFound

    client = from_env()
    try:
        with contextlib.suppress(NotFound):
            client.containers.get(config.container_name).remove(force=True)
    finally:
        client.close()


def record_pid(container: Container, pid_file: Path, proc_root: Path = Path("/proc")) -> None:
    """Write the container's main process id beside its config, for the host's CPU figures of the task,
    when that pid is one of this host's processes: in this container's cgroup (a local Linux daemon;
    under Docker Desktop the pid is the VM's, and no file is written)."""
    from docker.errors import DockerException

    with contextlib.suppress(DockerException, KeyError, ValueError):
        container.reload()
        pid = int(container.attrs["State"]["Pid"])
        if pid > 0 and in_cgroup_of(pid, container.id or "", proc_root):
            pid_file.write_text(str(pid))


def in_cgroup_of(pid: int, container_id: str, proc_root: Path) -> bool:
    """Whether host process `pid` runs in the cgroup of the container `container_id`."""
    try:
        return bool(container_id) and container_id in (proc_root / str(pid) / "cgroup").read_text()
    except OSError:
        return False


def copy_output(container: Container) -> None:
    """The container's stdout and stderr, as they come, to ours (the supervisor's log file)."""
    out = sys.stdout.buffer
    with contextlib.suppress(Exception):  # the stream ends, or breaks, when the container goes
        for chunk in container.logs(stream=True, follow=True):
            out.write(chunk)
            out.flush()


def run(config: ContainerConfig, pid_file: Path) -> int:
    """Start the container, wait for it to end or for a stop signal, remove it; its exit code."""
    from docker.errors import DockerException

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        remove_stale(config)
        container = testcontainer(config).start().get_wrapped_container()
    except DockerException as exc:
        print(f"devenv: could not start {config.image} as {config.container_name}: {exc}", file=sys.stderr)
        with contextlib.suppress(DockerException):
            remove_stale(config)  # created, but the copy or the start failed: leave nothing behind
        return EXIT_DOCKER_ERROR
    print(f"devenv: container {config.container_name} ({config.image}) started", file=sys.stderr, flush=True)
    threading.Thread(target=copy_output, args=(container,), daemon=True).start()
    record_pid(container, pid_file)
    ended = threading.Event()
    result: dict[str, int] = {}

    def wait() -> None:
        try:
            result["code"] = int(container.wait()["StatusCode"])
        except Exception as exc:  # the daemon gone (requests' errors too): the container's fate is unknown
            print(f"devenv: lost track of {config.container_name}: {exc}", file=sys.stderr, flush=True)
        finally:
            ended.set()

    threading.Thread(target=wait, daemon=True).start()
    try:
        while not ended.wait(0.2):
            if stop.is_set():
                with contextlib.suppress(DockerException):
                    container.stop(timeout=int(config.stop_timeout_s))
                ended.wait(config.stop_timeout_s + 2)
                break
    finally:
        with contextlib.suppress(DockerException):
            # v=True removes only its anonymous volumes (redis:7 declares one); named ones, the data,
            # stay until `down --volumes`
            container.remove(force=True, v=True)
        pid_file.unlink(missing_ok=True)
    return result.get("code", EXIT_DOCKER_ERROR)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m devenv.runtime.container_process CONFIG.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    return run(ContainerConfig.from_json(path.read_text()), path.with_suffix(".pid"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
