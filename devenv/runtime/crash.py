"""A supervisor that died without stopping (kill -9, OOM, a power cut): how the next command notices it,
says so in one line, and clears what it left.

A supervisor that stops cleanly writes phase `stopped` last; one that dies leaves the state file as it
was (`ready`, `starting`, ...) and releases its lock (the kernel closes the file). Its children die with
it (devenv.runtime.children); anything still running under a recorded pid and start time is stopped here,
all at once, so `down` after a crash takes seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devenv.runtime.children import Recorded, alive, stop_recorded
from devenv.runtime.state import StateDir

GRACE_S = 3.0  # SIGTERM to SIGKILL for what a dead supervisor left (down after a crash stays <= 5 s)


@dataclass(frozen=True)
class Crash:
    """The last supervisor of a state directory died while it was in `phase`."""

    pid: int | None
    phase: str
    recorded: tuple[Recorded, ...]

    def line(self) -> str:
        """What happened, in one line."""
        left = alive(self.recorded)
        running = (
            f"{len(left)} of its processes still run ({', '.join(e.name for e in left)})"
            if left
            else "none of its processes is left"
        )
        return f"the devenv supervisor (pid {self.pid}) died while {self.phase} without stopping: {running}"


def detect(state: StateDir) -> Crash | None:
    """The crash of the last supervisor, or None while one runs or when the last one stopped cleanly."""
    if state.supervisor_running():
        return None
    snapshot = state.read()
    supervisor = snapshot.get("supervisor") or {}
    phase = supervisor.get("phase")
    if phase in (None, "stopped"):
        return None
    return Crash(supervisor.get("pid"), str(phase), tuple(recorded_processes(snapshot)))


def recorded_processes(snapshot: dict[str, Any]) -> list[Recorded]:
    """Every process the state file records (pid and start time), by service name."""
    return [
        Recorded(name, svc["pid"], svc.get("create_time"))
        for name, svc in snapshot.get("services", {}).items()
        if svc.get("pid")
    ]


def clear(state: StateDir, crash: Crash) -> list[Recorded]:
    """Stop what the dead supervisor left and record the crash as the last run's error; returns what was
    still running."""
    line = crash.line()
    stopped = stop_recorded(crash.recorded, GRACE_S)
    snapshot = state.read()
    if snapshot.get("facts", {}).get("runtime") == "docker":
        from devenv.runtime import docker  # the daemon's client loads only for a Docker stack

        docker.clean_up(state, volumes=False)  # the containers its killed container processes kept
    snapshot["supervisor"] = {**snapshot.get("supervisor", {}), "phase": "stopped", "error": line}
    snapshot["services"] = {}
    state.write(snapshot)
    return stopped
