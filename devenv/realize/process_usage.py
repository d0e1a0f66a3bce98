"""How busy a supervised process is: CPU and resident memory of it and its descendants, read with psutil.

What AWS measures for a task or a database host, locally, is a process tree: a task's process (or, under
the docker runtime, its container's main process on the host, not the process watching the container),
Postgres's postmaster and its backends. CPU is counted as cores busy between two readings.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import psutil

from devenv.runtime import docker
from devenv.runtime.supervisor import Supervisor


def service_pid(supervisor: Supervisor, name: str) -> int | None:
    """The host pid doing a supervised service's work (a container's own process under the docker
    runtime), or None while it is not running or its container's pid is unknown."""
    running = supervisor.services.get(name)
    if running is None or running.proc is None or running.proc.poll() is not None:
        return None
    if docker.runs_container(running.spec.argv):
        return docker.container_pid(supervisor.state_dir, name)
    return running.proc.pid


@dataclass(frozen=True)
class TreeUsage:
    """One reading: cores busy since the previous one (None at the first), resident bytes, and the
    processes read (the root first)."""

    cpu_cores: float | None
    rss_bytes: int
    processes: list[psutil.Process]


class ProcessTreeMeter:
    """Reads a process tree again and again; each reading's CPU covers the time since the previous."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._root = psutil.Process(pid)
        self._previous: tuple[float, float] | None = None  # (monotonic time, CPU seconds)

    def read(self) -> TreeUsage:
        """Raises psutil.NoSuchProcess once the root process is gone."""
        with self._root.oneshot():
            times = self._root.cpu_times()
            rss = self._root.memory_info().rss
        # A descendant that ended was reaped into its parent's children_* times: none goes missing.
        cpu = _total(times)
        processes = [self._root]
        for child in self._root.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # it ended meanwhile
                with child.oneshot():
                    child_times = child.cpu_times()
                    rss += child.memory_info().rss
                cpu += _total(child_times)
                processes.append(child)
        now = time.monotonic()
        cores = None
        if self._previous is not None and now > self._previous[0]:
            cores = max(0.0, (cpu - self._previous[1]) / (now - self._previous[0]))
        self._previous = (now, cpu)
        return TreeUsage(cores, rss, processes)


def _total(times: Any) -> float:  # psutil's cpu_times() tuple
    return float(times.user + times.system + times.children_user + times.children_system)
