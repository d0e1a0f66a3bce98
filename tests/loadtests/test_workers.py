"""`devenv loadtest --workers N`: a Locust master and N worker processes against a real proxy; a worker
killed mid-run makes the run `degraded` (exit 9); no worker outlives devenv."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from devenv.loadtest.summary import EXIT_CODES, degrade
from tests.conftest import MANAGEMENT_TOKEN, ProxyTarget
from tests.loadtests.conftest import UPSTREAM_KEY, Devenv


def _workers_of(process: subprocess.Popen[str], count: int, timeout_s: float = 60) -> list[psutil.Process]:
    """The Locust worker processes devenv started (its children with `--worker`), once all `count` run."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [
            child
            for child in psutil.Process(process.pid).children()
            if "--worker" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE
        ]
        if len(found) == count:
            return found
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    raise AssertionError(f"devenv did not start {count} Locust workers within {timeout_s}s")


def _wait_for_load(target: ProxyTarget, more_than: int, timeout_s: float = 90) -> None:
    """Until the upstream has seen `more_than` more calls with the run's project key: its users are at work."""

    def calls() -> int:
        return int(target.mock_stats()["by_authorization"].get(f"Bearer {UPSTREAM_KEY}", 0))

    before = calls()
    deadline = time.monotonic() + timeout_s
    while calls() - before <= more_than:
        assert time.monotonic() < deadline, "the load test sent no load"
        time.sleep(0.2)


def _loadtest(devenv: Devenv, target: ProxyTarget, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        devenv.argv(
            "loadtest",
            "--url",
            target.proxy_url,
            "--management-token",
            MANAGEMENT_TOKEN,
            "--report-dir",
            str(tmp_path / "runs"),
            "--output",
            "json",
            *args,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=devenv.env,
    )


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_a_worker_killed_mid_run_degrades_the_run(
    devenv: Devenv, local_target: ProxyTarget, tmp_path: Path
) -> None:
    process = _loadtest(devenv, local_target, tmp_path, "--workers", "2", "--users", "4", "--duration", "12s")
    try:
        workers = _workers_of(process, 2)
        _wait_for_load(local_target, more_than=50)
        victim, survivor = workers
        victim.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == EXIT_CODES["degraded"] == 9, err + out
    summary = json.loads(out)
    assert summary["verdict"] == "degraded" and summary["exit_code"] == 9
    assert summary["threshold_verdict"] in ("pass", "fail")
    rows = {row["pid"]: row for row in summary["workers"]}
    assert set(rows) == {victim.pid, survivor.pid}
    assert rows[victim.pid]["lost"] is True and rows[victim.pid]["exit"] == "was killed by SIGKILL"
    assert rows[survivor.pid]["lost"] is False
    assert rows[survivor.pid]["requests"] > 0
    assert sum(row["requests"] for row in rows.values()) == summary["requests"]
    assert len(summary["degraded"]) == 1
    assert f"pid {victim.pid}) was killed by SIGKILL" in summary["degraded"][0]
    page = (Path(summary["run_dir"]) / "report.html").read_text()
    assert "DEGRADED" in page and "died during the run" in page
    assert _gone(survivor.pid)


def test_master_and_workers_die_with_devenv(
    devenv: Devenv, local_target: ProxyTarget, tmp_path: Path
) -> None:
    process = _loadtest(devenv, local_target, tmp_path, "--workers", "2", "--users", "2", "--duration", "60s")
    try:
        workers = _workers_of(process, 2)
        workers += [c for c in psutil.Process(process.pid).children() if "--master" in c.cmdline()]
        assert len(workers) == 3
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not all(_gone(w.pid) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_gone(w.pid) for w in workers), [w.pid for w in workers if not _gone(w.pid)]
    finally:
        for worker in workers if "workers" in locals() else []:
            if not _gone(worker.pid):
                worker.kill()
        if process.poll() is None:
            process.kill()
            process.wait()


def test_degrade_keeps_the_thresholds_verdict_and_leaves_errors_errors() -> None:
    lost = ["worker 1 (pid 7) was killed by SIGKILL"]
    passed = degrade({"verdict": "pass", "exit_code": 0}, lost)
    assert (
        passed["verdict"] == "degraded" and passed["exit_code"] == 9 and passed["threshold_verdict"] == "pass"
    )
    assert passed["degraded"] == lost
    failed = degrade({"verdict": "fail", "exit_code": 1}, lost)
    assert failed["verdict"] == "degraded" and failed["threshold_verdict"] == "fail"
    errored = degrade({"verdict": "error", "exit_code": 2, "errors": []}, lost)
    assert errored["verdict"] == "error" and errored["exit_code"] == 2 and errored["errors"] == lost
    untouched = degrade({"verdict": "pass", "exit_code": 0}, [])
    assert untouched == {"verdict": "pass", "exit_code": 0}
