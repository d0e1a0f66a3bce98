"""The supervisor with real child processes: readiness deadlines, log tails, ordering, stop."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import psutil
import pytest

from devenv.errors import ServiceFailedError
from devenv.runtime import probes
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import RestartPolicy, ServiceSpec, Supervisor
from tests.ports import free_port


def http_server(name: str, port: int, depends_on: tuple[str, ...] = ()) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        ready=probes.http(f"http://127.0.0.1:{port}/"),
        ports={"http": port},
        depends_on=depends_on,
        ready_timeout_s=10,
    )


def test_a_service_that_never_gets_ready_fails_with_its_log_tail(tmp_path: Path) -> None:
    supervisor = Supervisor(StateDir(tmp_path), facts={})
    never = ServiceSpec(
        name="never",
        argv=["sh", "-c", "echo booting the flux capacitor; sleep 30"],
        ready=probes.tcp("127.0.0.1", free_port()),
        ready_timeout_s=1.0,
        stop_timeout_s=1.0,
    )
    with pytest.raises(ServiceFailedError) as caught:
        supervisor.start_all([never])
    assert "never did not become ready" in caught.value.message
    assert "booting the flux capacitor" in caught.value.message
    proc = supervisor.services["never"].proc
    assert proc is not None and proc.poll() is not None  # it was stopped, not left running


def test_a_service_that_exits_early_is_reported_with_its_exit_code(tmp_path: Path) -> None:
    supervisor = Supervisor(StateDir(tmp_path), facts={})
    crash = ServiceSpec(
        name="crash",
        argv=["sh", "-c", "echo cannot open config >&2; exit 3"],
        ready=probes.tcp("127.0.0.1", free_port()),
        restart=RestartPolicy(mode="never"),
    )
    with pytest.raises(ServiceFailedError) as caught:
        supervisor.start_all([crash])
    assert "exited with code 3" in caught.value.message
    assert "cannot open config" in caught.value.message


def waits_for_at_stop(name: str, other: str, folder: Path) -> ServiceSpec:
    """A service that, told to stop, says so and waits (past its grace period) until `other` was told too."""
    mine, theirs = folder / f"{name}.stopping", folder / f"{other}.stopping"
    script = (
        f"trap 'touch {mine}; i=0; while [ ! -e {theirs} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done;"
        f" exit 0' TERM; touch {folder / name}; while :; do sleep 0.05; done"
    )
    started = folder / name
    return ServiceSpec(
        name=name,
        argv=["sh", "-c", script],
        ready=lambda: probes.ProbeResult(started.exists(), str(started)),
        stop_timeout_s=3.0,
    )


def test_services_no_other_depends_on_stop_side_by_side(tmp_path: Path) -> None:
    # one after the other, the first would wait for the second past its grace and be killed (exit -9)
    supervisor = Supervisor(StateDir(tmp_path), facts={})
    marks = tmp_path / "marks"
    marks.mkdir()
    supervisor.start_all([waits_for_at_stop("a", "b", marks), waits_for_at_stop("b", "a", marks)])
    supervisor.stop_all()
    assert {name: running.exit_code for name, running in supervisor.services.items()} == {"a": 0, "b": 0}


def test_dependencies_start_first_and_stop_last(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    supervisor = Supervisor(StateDir(tmp_path), facts={}, on_event=lambda n, s, d: events.append((n, s)))
    supervisor.start_all(
        [http_server("web", free_port(), depends_on=("db",)), http_server("db", free_port())]
    )
    running = [name for name, state in events if state == "running"]
    assert running == ["db", "web"]
    pids = [r.proc.pid for r in supervisor.services.values() if r.proc]
    supervisor.stop_all()
    stopping = [name for name, state in events if state == "stopping"]
    assert stopping == ["web", "db"]
    assert not [pid for pid in pids if psutil.pid_exists(pid)]


def test_restart_policy_gives_up_after_max_restarts(tmp_path: Path) -> None:
    policy = RestartPolicy(mode="on-failure", max_restarts=2, window_s=60, backoff_s=0.01)
    assert policy.allows(1, 0) and policy.allows(1, 1)
    assert not policy.allows(1, 2)
    assert not policy.allows(0, 0)
    assert RestartPolicy(mode="always").allows(0, 0)
    assert not RestartPolicy(mode="never").allows(1, 0)


@pytest.mark.parametrize("phase", ["starting", "ready"])
def test_a_service_added_after_ready_fails_alone(tmp_path: Path, phase: str) -> None:
    """Before the stack is ready a failed start fails `up`; after it (a task whose new code does not
    start), only that service fails: it is forgotten, its log kept, and the supervisor stays ready."""
    supervisor = Supervisor(StateDir(tmp_path), facts={})
    supervisor.phase = phase
    crash = ServiceSpec(
        name="proxy-0badc0de",
        argv=["sh", "-c", "echo 'SyntaxError: invalid syntax' >&2; exit 1"],
        ready=probes.tcp("127.0.0.1", free_port()),
        restart=RestartPolicy(mode="never"),
    )
    with pytest.raises(ServiceFailedError) as caught:
        supervisor.add(crash)
    assert "SyntaxError" in caught.value.message
    if phase == "ready":
        assert supervisor.phase == "ready" and supervisor.error is None
        assert "proxy-0badc0de" not in supervisor.services
    else:
        assert supervisor.phase == "failed" and supervisor.error == caught.value.message
        assert supervisor.services["proxy-0badc0de"].state == "failed"
    assert "SyntaxError" in StateDir(tmp_path).log_for("proxy-0badc0de").read_text()


def test_services_added_together_start_side_by_side_and_fail_together_after_ready(tmp_path: Path) -> None:
    """`add(a, b)` starts both at once (the realizer's Aurora and ElastiCache endpoints): b, ready only
    after a second, does not hold a up. Once ready, a failed start forgets every service of that call."""
    events: list[tuple[str, str]] = []
    supervisor = Supervisor(StateDir(tmp_path), facts={}, on_event=lambda n, s, d: events.append((n, s)))
    slow_port = free_port()
    slow = ServiceSpec(
        name="slow",
        argv=["sh", "-c", f"sleep 1; exec {sys.executable} -m http.server {slow_port} --bind 127.0.0.1"],
        ready=probes.http(f"http://127.0.0.1:{slow_port}/"),
        ready_timeout_s=10,
    )
    try:
        supervisor.add(slow, http_server("quick", free_port()))
        assert [name for name, state in events if state == "running"] == ["quick", "slow"]
        supervisor.phase = "ready"
        crash = ServiceSpec(
            name="crash",
            argv=["sh", "-c", "exit 1"],
            ready=probes.tcp("127.0.0.1", free_port()),
            restart=RestartPolicy(mode="never"),
        )
        fine = http_server("fine", free_port())
        with pytest.raises(ServiceFailedError):
            supervisor.add(fine, crash)
        assert set(supervisor.services) == {"slow", "quick"}
        with pytest.raises(OSError):  # `fine` started, and was stopped with the call
            socket.create_connection(("127.0.0.1", fine.ports["http"]), timeout=1).close()
    finally:
        supervisor.stop_all()
