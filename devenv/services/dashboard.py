"""The stack's dashboard page as a service of `devenv up` (`python -m devenv.dashboard`), so the URL `up`
prints works at once: a native process on 127.0.0.1 with either runtime, since it reads the local cloud
through the emulator's port and the tasks' logs from the state dir, as `devenv dashboard` does."""

from __future__ import annotations

import sys

from devenv.config import Settings
from devenv.runtime import probes
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import RestartPolicy, ServiceSpec

NAME = "dashboard"


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}/"


def spec(settings: Settings, state: StateDir, port: int) -> ServiceSpec:
    """Ready once the page answers; the stack's data is read per request, so it starts before the stack
    is deployed and shows it as soon as it is."""
    where = ["--port", str(port), "--state-dir", str(state.root), "--region", settings.region]
    return ServiceSpec(
        name=NAME,
        argv=[sys.executable, "-m", "devenv.dashboard", *where],
        ports={"http": port},
        url=url(port),
        ready=probes.http(f"{url(port)}healthz"),
        ready_timeout_s=settings.ready_timeout_s,
        stop_timeout_s=settings.stop_timeout_s,
        restart=RestartPolicy(mode="on-failure"),
    )
