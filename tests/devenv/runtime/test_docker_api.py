"""What the docker runtime asks of Docker, checked without a daemon: a recording stub of the Docker
Engine API on a Unix socket answers the calls testcontainers and docker-py make, and the tests read
the requests (the container spec Docker would get) and the state file devenv writes.

The stub stands in for the Docker daemon only (which cannot run on this machine); the runtime's
tests against a real daemon are in test_docker.py and run wherever one answers.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import socketserver
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from testcontainers.core.config import testcontainers_config

from devenv.config import Settings
from devenv.errors import MissingDependencyError
from devenv.runtime import docker as docker_runtime
from devenv.runtime.ports import free_port
from devenv.runtime.state import StateDir


@dataclass
class EngineStub:
    """Answers the Docker Engine API calls of a container's life; records every request."""

    images: set[str]
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def created(self) -> list[dict[str, Any]]:
        return [
            body for method, path, body in self.requests if method == "POST" and "/containers/create" in path
        ]

    def calls(self, method: str, pattern: str) -> list[str]:
        return [path for m, path, _ in self.requests if m == method and re.search(pattern, path)]

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        route = re.sub(r"^/v[\d.]+", "", path.split("?")[0])
        if route in ("/_ping", "/version"):
            return 200, {
                "ApiVersion": "1.45",
                "MinAPIVersion": "1.24",
                "Version": "27.0.0",
            } if route == "/version" else "OK"
        if method == "POST" and route == "/networks/create":
            return 201, {"Id": "net-1"}
        if route.startswith("/networks/"):
            return (200, {"Id": "net-1", "Name": "devenv-net"}) if method == "GET" else (204, None)
        if method == "GET" and (match := re.fullmatch(r"/images/(.+)/json", route)):
            return (
                (200, {"Id": "sha256:" + "0" * 64})
                if match[1] in self.images
                else (404, {"message": "no such image"})
            )
        if method == "POST" and route == "/containers/create":
            cid = f"c{len(self.containers) + 1:063d}"
            ports = {
                key: [{"HostIp": b["HostIp"], "HostPort": b["HostPort"] or "49153"} for b in bindings]
                for key, bindings in body["HostConfig"].get("PortBindings", {}).items()
            }
            self.containers[cid] = {
                "Id": cid,
                "Name": "/" + path.split("name=")[-1].split("&")[0],
                "Config": {"Tty": False, **body},
                "State": {"Status": "created"},
                "RestartCount": 0,
                "NetworkSettings": {"Ports": ports},
            }
            return 201, {"Id": cid, "Warnings": []}
        if match := re.fullmatch(r"/containers/(\w+)(/\w+)?", route):
            container = self.containers.get(match[1])
            if container is None:
                return 404, {"message": "no such container"}
            action = match[2]
            if action == "/start":
                container["State"] = {"Status": "running", "Health": {"Status": "healthy", "Log": []}}
                return 204, None
            if action == "/stop":
                container["State"] = {"Status": "exited", "ExitCode": 0}
                return 204, None
            if action == "/archive" and method == "PUT":
                return 200, None
            if action == "/logs":
                return 200, b""
            if action == "/json":
                return 200, container
            if method == "DELETE" and action is None:
                del self.containers[match[1]]
                return 204, None
        return 404, {"message": f"the stub does not know {method} {route}"}


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineStub]:
    stub = EngineStub(images={"devenv-cloud:local", "llmproxy:local", "redis:7"})

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            is_json = "json" in (self.headers.get("Content-Type") or "")
            body = (json.loads(raw) if is_json else raw) if raw else None
            status, payload = stub.answer(self.command, self.path, body)
            data = (
                payload
                if isinstance(payload, bytes)
                else b""
                if payload is None
                else json.dumps(payload).encode()
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        def log_message(self, *args: Any) -> None:
            pass

        def address_string(self) -> str:  # a Unix socket has no client address
            return "stub"

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    sock = tmp_path / "docker.sock"
    server = Server(str(sock), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    monkeypatch.setattr(testcontainers_config, "_ryuk_disabled", True)  # no reaper container in the stub
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    state = StateDir(tmp_path / ".devenv")
    state.ensure()
    return state


def emulator_config(state: StateDir, port: int) -> docker_runtime.ContainerConfig:
    settings = Settings.model_validate({"state_dir": state.root, "emulator_port": port, "auto_ports": True})
    configs = docker_runtime.stack(settings, state, infra_only=True)
    return dataclasses.replace(next(c for c in configs if c.name == "emulator"), depends_on=())  # alone


def test_a_container_is_created_as_configured_and_recorded(engine: EngineStub, state: StateDir) -> None:
    port = free_port()
    config = emulator_config(state, port)
    supervisor = docker_runtime.ContainerSupervisor(state, {"runtime": "docker"})
    supervisor.start_all([config], ready_timeout_s=5)

    (spec,) = engine.created()
    assert spec["Image"] == "devenv-cloud:local"
    assert spec["Cmd"] == ["--host", "0.0.0.0", "--port", "4566", "--region", "us-east-1"]
    assert "DEVENV_REDIS_ENDPOINT=redis:6379" in spec["Env"]
    host = spec["HostConfig"]
    assert host["PortBindings"] == {"4566/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert spec["Healthcheck"]["Test"][:3] == ["CMD", "python", "-c"]
    assert spec["Labels"][docker_runtime.LABEL_SERVICE] == "emulator"
    assert spec["StopSignal"] == "SIGTERM"
    (network,) = spec["NetworkingConfig"]["EndpointsConfig"].values()
    assert network["Aliases"] == ["emulator"]  # the other containers reach it by service name
    assert engine.calls("POST", r"/containers/create\?name=" + config.container_name)

    recorded = state.read()["services"]["emulator"]
    assert (recorded["state"], recorded["health"]) == ("running", "healthy")
    assert recorded["container"] in engine.containers and recorded["ports"] == {"emulator": port}
    assert recorded["pid"] is None

    supervisor.stop_all()
    assert engine.calls("POST", r"/containers/\w+/stop") and engine.calls("DELETE", r"/containers/\w+(\?|$)")
    assert engine.calls("DELETE", r"/networks/net-1")
    assert engine.containers == {}
    assert state.read()["supervisor"]["phase"] == "stopped"


def test_a_task_container_gets_a_docker_picked_port_and_a_named_volume(
    engine: EngineStub, state: StateDir
) -> None:
    task = docker_runtime.task_container(state, "cache-task", "redis:7", ["redis-server"], port=6379)
    with_volume = dataclasses.replace(task, volumes={docker_runtime.postgres_volume(state): "/data"})
    supervisor = docker_runtime.ContainerSupervisor(state, {"runtime": "docker"})
    supervisor.add(with_volume, ready_timeout_s=5)
    (spec,) = engine.created()
    assert spec["HostConfig"]["PortBindings"] == {"6379/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert spec["HostConfig"]["Binds"] == [f"{docker_runtime.postgres_volume(state)}:/data:rw"]
    assert supervisor.host_port("cache-task", 6379) == 49153  # what the engine published
    supervisor.remove("cache-task")
    assert "cache-task" not in state.read()["services"] and engine.containers == {}


def test_missing_project_images_stop_everything_before_a_container_starts(
    engine: EngineStub, state: StateDir
) -> None:
    engine.images.discard("devenv-cloud:local")
    supervisor = docker_runtime.ContainerSupervisor(state, {"runtime": "docker"})
    with pytest.raises(MissingDependencyError) as caught:
        supervisor.start_all([emulator_config(state, free_port())], ready_timeout_s=5)
    assert "devenv-cloud:local" in caught.value.message
    assert caught.value.hint is not None
    assert "docker build -f dockerfiles/cloud.Dockerfile -t devenv-cloud:local ." in caught.value.hint
    assert engine.created() == []


def test_down_removes_containers_a_dead_supervisor_left(engine: EngineStub, state: StateDir) -> None:
    supervisor = docker_runtime.ContainerSupervisor(state, {"runtime": "docker"})
    supervisor.start_all([emulator_config(state, free_port())], ready_timeout_s=5)
    snapshot = state.read()  # the supervisor "dies" here: nothing stops its container
    assert len(engine.containers) == 1
    assert docker_runtime.clean_up(state, snapshot, volumes=False, grace_s=1) == 1
    assert engine.containers == {}


def test_the_alb_mirror_gets_the_compose_caddyfile_copied_in(engine: EngineStub, state: StateDir) -> None:
    engine.images.add("caddy:2")
    settings = Settings.model_validate({"state_dir": state.root, "auto_ports": True})
    alb = next(c for c in docker_runtime.stack(settings, state) if c.name == "alb")
    supervisor = docker_runtime.ContainerSupervisor(state, {"runtime": "docker"})
    supervisor.add(dataclasses.replace(alb, depends_on=()), ready_timeout_s=5)
    ((path, body),) = [(p, b) for m, p, b in engine.requests if m == "PUT" and "/archive" in p]
    assert path.endswith("/archive?path=%2F")  # a tar of the whole path, unpacked at /
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        (name,) = archive.getnames()
        assert name.lstrip("/") == "etc/caddy/Caddyfile"
        member = archive.extractfile(name)
        assert member is not None and member.read() == docker_runtime.CADDYFILE.read_bytes()
    assert state.read()["services"]["alb"]["url"] == f"http://localhost:{alb.host_ports['http']}"
    supervisor.stop_all()
