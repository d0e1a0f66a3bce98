"""A whole local stack to break: its processes (pid + start time) and ports read from the state file, and
a client loop through the ALB mirror on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devenv.config import INSTANT_MOCK_UPSTREAM, environment
from devenv.runtime.children import Recorded, alive
from devenv.runtime.crash import recorded_processes
from devenv.runtime.ports import holder, is_free
from devenv.runtime.state import StateDir
from tests.conftest import reachable_tmpdir
from tests.local_stack import PORT_SETTINGS, props_mock_upstream_port, run_devenv
from tests.ports import free_port

UP_TIMEOUT_S = 600
PORT_RELEASE_S = 10.0


@dataclass
class ChaosStack:
    """`devenv` on a private state dir and ports (the CDK cache shared, so only the first up synthesizes)."""

    state: StateDir
    env: dict[str, str]
    alb: str

    def devenv(self, *args: str, timeout: float = UP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return run_devenv(self.env, *args, timeout=timeout)

    def processes(self) -> list[Recorded]:
        return recorded_processes(self.state.read())

    def ports(self) -> set[int]:
        services = self.state.read().get("services", {}).values()
        return {port for svc in services for port in svc.get("ports", {}).values()}

    def supervisor_pid(self) -> int:
        return int(self.state.read()["supervisor"]["pid"])

    def pid_of(self, service: str) -> Recorded | None:
        """The service's process, None while it has none (between a crash and its restart)."""
        return next((entry for entry in self.processes() if entry.name == service), None)

    def assert_nothing_left(self, processes: list[Recorded], ports: set[int]) -> None:
        """No recorded process runs, and every port is released (within PORT_RELEASE_S: the kernel
        tears a dead process's sockets down a moment after the process is gone, longer on a loaded
        machine); a port still held names its holder."""
        assert alive(processes) == [], f"still running: {alive(processes)}"
        deadline = time.monotonic() + PORT_RELEASE_S
        while busy := sorted(port for port in ports if not is_free(port)):
            if time.monotonic() > deadline:
                held = {port: holder(port) or "holder unknown" for port in busy}
                raise AssertionError(f"ports still held {PORT_RELEASE_S:g} s after the stack stopped: {held}")
            time.sleep(0.1)


def stack_env(state_dir: Path, cdk_cache: Path) -> dict[str, str]:
    ports = {name: free_port() for name in PORT_SETTINGS}
    ports["mock_upstream_port"] = props_mock_upstream_port()
    return {
        **os.environ,
        "DEVENV_STATE_DIR": str(state_dir),
        "DEVENV_CDK_CACHE_DIR": str(cdk_cache),
        "DEVENV_AUTOSCALING": "false",
        **environment(INSTANT_MOCK_UPSTREAM),
        **{f"DEVENV_{name.upper()}": str(port) for name, port in ports.items()},
    }


@pytest.fixture(scope="session")
def cdk_cache() -> Iterator[Path]:
    path = reachable_tmpdir("devenv-test-chaos-cdk-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fresh_stack(cdk_cache: Path) -> Iterator[ChaosStack]:
    """A state dir and ports for one test, not started; whatever the test leaves is taken down."""
    state_dir = reachable_tmpdir("devenv-test-chaos-")
    env = stack_env(state_dir, cdk_cache)
    stack = ChaosStack(StateDir(state_dir), env, f"http://127.0.0.1:{env['DEVENV_ALB_PORT']}")
    yield stack
    stack.devenv("down", timeout=120)
    shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def running_stack(cdk_cache: Path) -> Iterator[ChaosStack]:
    """One whole stack for the module (`up -d`), taken down at its end, where `down` must leave nothing."""
    state_dir = reachable_tmpdir("devenv-test-chaos-")
    env = stack_env(state_dir, cdk_cache)
    stack = ChaosStack(StateDir(state_dir), env, f"http://127.0.0.1:{env['DEVENV_ALB_PORT']}")
    up = stack.devenv("up", "-d")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield stack
        processes, ports = stack.processes(), stack.ports()
        down = stack.devenv("down", timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        stack.assert_nothing_left(processes, ports)  # after every case's kills and restarts
    finally:
        stack.devenv("down", timeout=120)
        shutil.rmtree(state_dir, ignore_errors=True)


@dataclass
class ClientLoop:
    """GET /health through the ALB mirror, back to back, each answer (time, status; 0 = no answer) kept."""

    url: str
    seen: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
            self.seen.append((time.monotonic(), status))
            time.sleep(0.05)

    def since(self, moment: float) -> list[int]:
        return [status for at, status in list(self.seen) if at >= moment]

    def stop(self) -> None:
        self._stop.set()


StartLoop = Callable[[str], ClientLoop]


@pytest.fixture
def client_loop() -> Iterator[StartLoop]:
    """A factory: `client_loop(alb_url)` starts a loop that stops at the test's end."""
    loops: list[tuple[ClientLoop, threading.Thread]] = []

    def start(url: str) -> ClientLoop:
        loop = ClientLoop(url)
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        loops.append((loop, thread))
        return loop

    yield start
    for loop, thread in loops:
        loop.stop()
        thread.join(5)


def dump(document: Any) -> str:
    return json.dumps(document, indent=1)[:4000]
