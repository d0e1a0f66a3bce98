"""The native supervisor: every service a direct child process, started in dependency order,
probed until ready, restarted by policy, and stopped (SIGTERM, grace, SIGKILL) on the way out.

Children run in their own session so a terminal's Ctrl-C reaches only the supervisor, which then
stops them in reverse dependency order. Exits are noticed by polling `Popen.poll()` (which reaps at
once); nothing is daemonized, and every child dies with the supervisor, even when it is killed
(devenv.runtime.children), so no orphan outlives us.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil

from devenv.errors import ServiceFailedError
from devenv.runtime import children
from devenv.runtime.logfiles import marker, tail
from devenv.runtime.probes import Probe, ProbeResult, wait_until_ready
from devenv.runtime.state import StateDir

POLL_INTERVAL_S = 0.05
HEALTH_INTERVAL_S = 2.0


@dataclass(frozen=True)
class RestartPolicy:
    """When an exited service is started again: `on-failure` (non-zero exit), `always`, or `never`."""

    mode: Literal["always", "on-failure", "never"] = "on-failure"
    max_restarts: int = 5
    window_s: float = 60.0
    backoff_s: float = 0.1

    def allows(self, exit_code: int, recent_restarts: int) -> bool:
        if self.mode == "never" or (self.mode == "on-failure" and exit_code == 0):
            return False
        return recent_restarts < self.max_restarts


@dataclass
class ServiceSpec:
    """How to run one service: its command, where it listens, how to tell it is ready."""

    name: str
    argv: list[str]
    ready: Probe
    ports: dict[str, int] = field(default_factory=dict)
    url: str | None = None
    env: dict[str, str] | None = None
    cwd: Path | None = None
    user: str | None = None
    depends_on: tuple[str, ...] = ()
    prepare: Callable[[], None] | None = None
    health: Probe | None = None
    ready_timeout_s: float = 30.0
    stop_timeout_s: float = 10.0
    stop_signal: int = signal.SIGTERM
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    extra: dict[str, Any] = field(default_factory=dict)


ServiceState = Literal["starting", "running", "restarting", "stopping", "stopped", "failed"]
EventCallback = Callable[[str, str, str], None]


@dataclass
class Running:
    """A service the supervisor owns, and what it last saw of it."""

    spec: ServiceSpec
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    create_time: float | None = None
    started_at: float | None = None
    state: ServiceState = "starting"
    health: str = "unknown"
    health_detail: str = ""
    exit_code: int | None = None
    ready_after_s: float | None = None  # how long its last start took to become ready
    restarts: list[float] = field(default_factory=list)
    ready_event: threading.Event = field(default_factory=threading.Event)

    def snapshot(self) -> dict[str, Any]:
        return {
            "pid": self.proc.pid if self.proc and self.proc.poll() is None else None,
            "create_time": self.create_time,
            "ports": self.spec.ports,
            "url": self.spec.url,
            "state": self.state,
            "health": self.health,
            "health_detail": self.health_detail,
            "started_at": self.started_at,
            "ready_after_s": self.ready_after_s,
            "restarts": len(self.restarts),
            "exit_code": self.exit_code,
            "log": str(self.log_path),
            "depends_on": list(self.spec.depends_on),
            **self.spec.extra,
        }


class Supervisor:
    """Owns a set of child processes and keeps the state file in step with them."""

    def __init__(
        self, state_dir: StateDir, facts: dict[str, Any], on_event: EventCallback | None = None
    ) -> None:
        self.state_dir = state_dir
        self.facts = facts
        self.on_event = on_event or (lambda name, state, detail: None)
        self.services: dict[str, Running] = {}
        self.phase = "starting"
        self.phase_detail: str | None = None
        self.error: str | None = None
        self.error_hint: str | None = None
        self.progress: list[dict[str, Any]] = []  # the steps of `up` (devenv.runtime.progress)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._last_health = 0.0

    # -- starting -------------------------------------------------------------------------

    def start_all(self, specs: Iterable[ServiceSpec], fatal: bool = True) -> None:
        """Start every spec once its dependencies are ready; on any failure raise (and, when `fatal`,
        mark the supervisor failed: `up` then stops all)."""
        specs = list(specs)
        known = {spec.name for spec in specs} | set(self.services)
        for spec in specs:
            missing = [dep for dep in spec.depends_on if dep not in known]
            if missing:
                raise ServiceFailedError(f"service {spec.name} depends on unknown service(s) {missing}")
            with self._lock:
                self.services[spec.name] = Running(spec, self.state_dir.log_for(spec.name))
        self._write_state()
        failures: list[ServiceFailedError] = []
        with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
            try:
                for future in [pool.submit(self._start_when_deps_ready, spec.name) for spec in specs]:
                    exc = future.exception()
                    if isinstance(exc, ServiceFailedError):
                        failures.append(exc)
                    elif exc is not None:
                        raise exc
            except BaseException:
                self._stopping.set()  # interrupted (Ctrl-C, SIGTERM): the starts in flight give up
                raise
        if failures:
            if fatal:
                self.phase, self.error = "failed", failures[0].message
            self._write_state()
            raise failures[0]

    def add(self, *specs: ServiceSpec) -> None:
        """Start more services now, together (the realizer adds tasks and endpoints this way). Before the
        stack is ready a failed start fails `up`; once it is ready, it is those services' own failure:
        raised to the caller and the services of this call stopped and forgotten (their logs stay), while
        the supervisor and the rest keep running (a task whose new code does not start is replaced by ECS,
        not a reason to stop the stack)."""
        fatal = self.phase != "ready"
        try:
            self.start_all(specs, fatal=fatal)
        except ServiceFailedError:
            if not fatal:
                for spec in specs:
                    self.remove(spec.name)
            raise

    def _start_when_deps_ready(self, name: str) -> None:
        running = self.services[name]
        for dep in running.spec.depends_on:
            dep_running = self.services[dep]
            while not dep_running.ready_event.wait(0.05):
                if dep_running.state == "failed" or self._stopping.is_set():
                    self._set(running, "failed", f"dependency {dep} did not start")
                    raise ServiceFailedError(f"{name} not started: its dependency {dep} failed")
        self._launch_and_wait(running)

    def _launch_and_wait(self, running: Running) -> None:
        spec = running.spec
        began = time.monotonic()
        self._set(running, "starting", "")
        try:
            if spec.prepare:
                spec.prepare()
            self._launch(running)
        except ServiceFailedError as exc:
            self._set(running, "failed", exc.message)
            raise
        except OSError as exc:
            self._set(running, "failed", str(exc))
            raise ServiceFailedError(f"{spec.name} could not be started: {exc}") from exc
        proc = running.proc
        assert proc is not None
        result = wait_until_ready(
            spec.ready,
            spec.ready_timeout_s,
            alive=lambda: proc.poll() is None and not self._stopping.is_set(),
        )
        if not result.ok or proc.poll() is not None:
            if proc.poll() is not None:
                reason = f"exited with code {proc.returncode} before it was ready"
            elif self._stopping.is_set():
                reason = "stopped while starting"
            else:
                reason = result.detail
            self._terminate(running)
            self._set(running, "failed", reason)
            log_tail = tail(running.log_path)
            raise ServiceFailedError(
                f"{spec.name} did not become ready: {reason}\n--- last lines of {running.log_path} ---\n{log_tail}",
                f"read the whole log with `devenv logs {spec.name}`",
            )
        running.health, running.health_detail = "healthy", result.detail
        running.ready_after_s = time.monotonic() - began
        running.ready_event.set()
        self._set(running, "running", f"ready in {running.ready_after_s:.2f} s")

    def _launch(self, running: Running) -> None:
        spec = running.spec
        running.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(running.log_path, "ab") as log:
            log.write(marker(f"starting {spec.name}: {' '.join(spec.argv)}").encode())
            log.flush()
            running.proc = children.spawn(
                spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=spec.env,
                cwd=spec.cwd,
                user=spec.user,
                group=spec.user,
                start_new_session=True,
            )
        running.started_at = time.time()
        running.exit_code = None
        try:
            running.create_time = psutil.Process(running.proc.pid).create_time()
        except psutil.Error:
            running.create_time = None
        self._write_state()

    def set_phase(self, phase: str, detail: str | None = None) -> None:
        """What the supervisor is doing beyond its services (e.g. deploying), for `up -d` to show."""
        self.phase, self.phase_detail = phase, detail
        self._write_state()

    def set_progress(self, steps: list[dict[str, Any]]) -> None:
        """The steps of `up` so far, kept in the state file for `up -d` to draw."""
        self.progress = steps
        self._write_state()

    # -- watching -------------------------------------------------------------------------

    def watch(self, stop: threading.Event) -> None:
        """Until `stop` is set: reap exits, restart by policy, refresh health."""
        self.phase = "ready"
        self._write_state()
        while not stop.wait(POLL_INTERVAL_S):
            self.check_once()

    def check_once(self) -> None:
        with self._lock:
            services = list(self.services.values())
        for running in services:
            proc = running.proc
            if running.state == "running" and proc is not None and proc.poll() is not None:
                self._handle_exit(running, proc.returncode)
        if time.monotonic() - self._last_health >= HEALTH_INTERVAL_S:
            self._last_health = time.monotonic()
            self._refresh_health(services)

    def _handle_exit(self, running: Running, code: int) -> None:
        now = time.monotonic()
        running.exit_code = code
        running.restarts = [t for t in running.restarts if now - t < running.spec.restart.window_s]
        running.ready_event.clear()
        if not running.spec.restart.allows(code, len(running.restarts)):
            self._set(running, "failed" if code != 0 else "stopped", f"exited with code {code}")
            return
        running.restarts.append(now)
        delay = running.spec.restart.backoff_s * 2 ** (len(running.restarts) - 1)
        self._set(
            running,
            "restarting",
            f"exited with code {code}; restart {len(running.restarts)} in {delay:.1f} s",
        )

        def restart() -> None:
            if self._stopping.wait(delay):
                return
            # On failure the state says so; the monitor keeps going for the others.
            with contextlib.suppress(ServiceFailedError):
                self._launch_and_wait(running)

        threading.Thread(target=restart, name=f"restart-{running.spec.name}", daemon=True).start()

    def _refresh_health(self, services: list[Running]) -> None:
        changed = False
        for running in services:
            if running.state != "running":
                continue
            probe = running.spec.health or running.spec.ready
            result: ProbeResult = probe()
            health = "healthy" if result.ok else "unhealthy"
            if (health, result.detail) != (running.health, running.health_detail):
                running.health, running.health_detail = health, result.detail
                changed = True
        if changed:
            self._write_state()

    # -- stopping -------------------------------------------------------------------------

    def remove(self, name: str) -> None:
        """Stop one service and forget it (the realizer removes tasks this way)."""
        running = self.services.get(name)
        if running is None:
            return
        self._set(running, "stopping", "")
        self._terminate(running)
        with self._lock:
            self.services.pop(name, None)
        self._write_state()

    def restart(self, name: str, down_for_s: float = 0.0) -> None:
        """Stop a service, keep it down for `down_for_s` (an outage to observe), then start it again.

        Blocks until it is ready again; the monitor does not count this as a crash.
        """
        running = self.services[name]
        running.ready_event.clear()
        self._set(running, "restarting", f"restart requested, down for {down_for_s:g} s")
        self._terminate(running)
        if self._stopping.wait(down_for_s):
            return
        self._launch_and_wait(running)

    def stop_all(self) -> None:
        """Stop every service, dependents before their dependencies: in waves, each wave's services side by
        side (each may take its grace period: the emulator saves the local cloud, a task drains), so `down`
        lasts as long as the slowest chain, not the sum of every stop."""
        self._stopping.set()
        self.phase = "stopping"
        self._write_state()
        remaining = list(reversed(self._start_order()))
        while remaining:
            wave = [
                name
                for name in remaining
                if not any(name in self.services[other].spec.depends_on for other in remaining)
            ]
            with ThreadPoolExecutor(max_workers=len(wave)) as pool:
                list(pool.map(self._stop, wave))
            remaining = [name for name in remaining if name not in wave]
        self.phase = "stopped"
        self._write_state()

    def _stop(self, name: str) -> None:
        running = self.services[name]
        if running.proc is not None and running.proc.poll() is None:
            self._set(running, "stopping", "")
            self._terminate(running)
        self._set(running, "stopped", "")

    def _terminate(self, running: Running) -> None:
        proc = running.proc
        if proc is None or proc.poll() is not None:
            return
        terminate(proc, running.spec.stop_signal, running.spec.stop_timeout_s)
        running.exit_code = proc.returncode

    def _start_order(self) -> list[str]:
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            for dep in self.services[name].spec.depends_on:
                if dep in self.services:
                    visit(dep)
            order.append(name)

        for name in list(self.services):
            visit(name)
        return order

    # -- state ----------------------------------------------------------------------------

    def _set(self, running: Running, state: ServiceState, detail: str) -> None:
        running.state = state
        self._write_state()
        self.on_event(running.spec.name, state, detail)

    def snapshot(self) -> dict[str, Any]:
        """The document the state file holds (what `status` and `up -d` read)."""
        with self._lock:
            services = {name: r.snapshot() for name, r in self.services.items()}
        return {
            "supervisor": {
                "pid": os.getpid(),
                "phase": self.phase,
                "error": self.error,
                "hint": self.error_hint,
                "updated_at": time.time(),
            },
            "progress": self.progress,
            "services": services,
            "facts": self.facts,
        }

    def _write_state(self) -> None:
        self.state_dir.write(self.snapshot())


def terminate(proc: subprocess.Popen[bytes], sig: int, grace_s: float) -> None:
    """Send `sig`, wait up to `grace_s`, then SIGKILL; always reaps the child."""
    try:
        proc.send_signal(sig)
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        proc.wait()
