"""The smoke load test through the whole local stack (ALB mirror, realized tasks, Aurora and ElastiCache
endpoints), as `nox -s loadtest_smoke` runs it, on the session's shared stack."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.local_stack import Stack

pytestmark = pytest.mark.slow


def why(done: subprocess.CompletedProcess[str]) -> str:
    """A failed run's own account: exit code, verdict, failed checks and workers (the JSON's head), and
    the end of its stderr."""
    try:
        summary = json.loads(done.stdout)
    except ValueError:
        return f"exit {done.returncode}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    keys = ("verdict", "exit_code", "setup_error", "breached", "degraded", "workers", "requests")
    account = {key: summary.get(key) for key in keys}
    account["failed_checks"] = [check for check in summary.get("thresholds") or [] if not check.get("ok")]
    return f"exit {done.returncode}: {json.dumps(account, indent=1)}\n{done.stderr[-3000:]}"


def test_the_smoke_profile_passes_through_the_local_stack(stack: Stack, tmp_path: Path) -> None:
    done = stack.devenv(
        "loadtest", "--target", "local", "--profile", "smoke", "--duration", "20s",
        "--report-dir", str(tmp_path), "--output", "json",
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, why(done)
    summary = json.loads(done.stdout)
    assert summary["verdict"] == "pass" and summary["breached"] == []
    assert summary["requests"] > 50
    assert summary["thresholds"] and all(check["ok"] for check in summary["thresholds"])
    # the stack's dashboard at the run's window, on the page `up` serves
    page = f"http://127.0.0.1:{stack.env['DEVENV_DASHBOARD_PORT']}/"
    link = summary["dashboard"]
    assert link["url"] == f"{page}?start={link['start']}&end={link['end']}"
    assert (
        link["start"] <= summary["started_at"] < summary["started_at"] + summary["duration_s"] <= link["end"]
    )


def test_two_workers_share_the_smoke_run_through_the_local_stack(stack: Stack, tmp_path: Path) -> None:
    done = stack.devenv(
        "loadtest", "--target", "local", "--profile", "smoke", "--workers", "2", "--users", "6",
        "--duration", "10s", "--report-dir", str(tmp_path), "--output", "json",
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, why(done)
    summary = json.loads(done.stdout)
    assert summary["verdict"] == "pass" and "degraded" not in summary
    # the run's tokens are revoked once no worker sends with them (a master quitting a headless run fired
    # test_stop before telling its workers: their last requests were refused, token_inactive)
    assert not [f for f in summary["failure_details"] if "401" in f["error"]], summary["failure_details"]
    workers = summary["workers"]
    assert [w["index"] for w in workers] == [1, 2]
    assert all(w["requests"] > 0 and not w["lost"] for w in workers), workers
    # the master's totals are exactly what its workers reported, request types and cache counts included
    assert sum(w["requests"] for w in workers) == summary["requests"]
    real = [f for f in summary["request_types"].values() if not f["metric_only"]]
    assert summary["requests"] == sum(f["requests"] for f in real)
    assert summary["cache"].get("chat: cache hit: hit", 0) > 0
    run_dir = Path(summary["run_dir"])
    assert (run_dir / "locust-worker-1.log").exists() and (run_dir / "locust-worker-2.log").exists()
