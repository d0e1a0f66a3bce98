"""The detached supervisor of `up -d` (devenv/cli/detach.py): its own session, none of the caller's
descriptors, its output in the supervisor log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from tests.devenv.cli.conftest import DevenvCli
from tests.waiting import wait_for


@pytest.mark.slow
def test_the_supervisor_keeps_no_descriptor_of_the_caller_runs_in_its_own_session_and_logs_every_step(
    devenv_cli: DevenvCli,
) -> None:
    read, write = os.pipe()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "devenv", "up", "-d", "--infra-only", "--quiet", "--output", "json"],
            env=devenv_cli.env,
            capture_output=True,
            text=True,
            timeout=90,
            pass_fds=(write,),
            check=False,
        )
        assert done.returncode == 0, done.stderr
        os.close(write)
        write = -1
        # only the supervisor could still hold the pipe's write end: then this read would block
        os.set_blocking(read, False)
        assert os.read(read, 1) == b""
    finally:
        os.close(read)
        if write != -1:
            os.close(write)
    pid = devenv_cli.status()["supervisor"]["pid"]
    assert os.getsid(pid) == pid  # a session of its own: the caller's Ctrl-C or hang-up does not reach it
    assert psutil.Process(pid).terminal() is None
    log = (devenv_cli.state_dir / "logs" / "supervisor.log").read_text()
    # every step, though the caller asked for --quiet --output json (its own output, not the log's)
    assert "✓ services: 3 ready" in log and "all services healthy" in log


def test_a_supervisor_that_fails_to_start_gives_its_reason_and_exit_code(devenv_cli: DevenvCli) -> None:
    # no service is ready in 10 ms: the child fails, rolls back and exits; the caller says why, with its code
    done = devenv_cli.run("up", "-d", "--infra-only", extra_env={"DEVENV_READY_TIMEOUT_S": "0.01"})
    assert done.returncode == 5, done.stderr  # ServiceFailedError's, as documented
    assert "did not become ready" in done.stderr and "fix:" in done.stderr
    assert "--- last lines of " in done.stderr and "starting " in done.stderr  # the failed service's log
    assert "Traceback" not in done.stderr
    assert (
        "error: " in (devenv_cli.state_dir / "logs" / "supervisor.log").read_text()
    )  # the child's own words


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # ended, not yet reaped by init
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_down_kills_a_supervisor_that_does_not_stop_saying_where_it_was(devenv_cli: DevenvCli) -> None:
    assert devenv_cli.run("up", "-d", "--infra-only", "--quiet").returncode == 0
    status = devenv_cli.status()
    pid = status["supervisor"]["pid"]
    services = [svc["pid"] for svc in status["services"]]
    os.kill(pid, signal.SIGSTOP)  # it cannot act on the SIGTERM `down` sends
    done = devenv_cli.run("down", extra_env={"DEVENV_STOP_TIMEOUT_S": "0.1"})  # grace: 3 x 0.1 s + 10 s
    assert done.returncode == 0, done.stderr
    assert "warning: the supervisor did not stop within 10 s (phase ready; not stopped yet: " in done.stderr
    assert f"What it was doing: {devenv_cli.state_dir / 'logs' / 'supervisor.log'}" in done.stderr
    wait_for(lambda: all(_gone(p) for p in [pid, *services]), 15, 0.1)  # its services did not outlive it
