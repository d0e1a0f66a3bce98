"""`devenv loadtest --on loadgen`: a run through the load generator stack deployed beside the session's
shared local stack (and destroyed after). The realized Locust master runs the profile on the realized
workers and writes its results to the stack's bucket in the emulator; devenv collects them into the usual
report. Without the stack deployed, one set-up error (exit 2). Load goes to the stack's ALB mirror on
127.0.0.1 only."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from devenv import stack_names as names
from tests.devenv.conftest import start_emulator, stop_emulator
from tests.loadtests.conftest import Devenv
from tests.local_stack import Stack
from tests.waiting import wait_for

# The shared stack (up to 240 s to start on a busy machine), the load generator's deploy (the CDK CLI) and
# a run with its report: more than the suite's default per-test timeout, which counts the module's fixtures
# in the first test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def realized(stack: Stack, service: str) -> list[dict[str, Any]]:
    """The running local tasks of an ECS service, as `devenv up` records them in its state."""
    state = json.loads((Path(stack.env["DEVENV_STATE_DIR"]) / "state.json").read_text())
    return [s for s in state["services"].values() if s.get("ecs_service") == service and s.get("pid")]


def connected_workers(stack: Stack) -> int:
    """How many workers the realized master counts (0 while it or its web UI is not up)."""
    masters = realized(stack, names.LOADGEN_MASTER_SERVICE)
    if not masters:
        return 0
    port = masters[0]["host_ports"][str(names.LOCUST_WEB_PORT)]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/requests", timeout=5) as response:
            return int(json.loads(response.read()).get("worker_count") or 0)
    except OSError:
        return 0


@pytest.fixture(scope="module")
def loadgen_stack(shared_stack: Stack) -> Iterator[tuple[Stack, dict[str, str]]]:
    """The session's shared stack with the load generator stack deployed beside it (its realized master
    and two workers connected); the stack's outputs. Destroyed afterwards, its tasks stopped with it."""
    shared_stack.await_steady()
    deployed = shared_stack.devenv(
        "deploy", "--stack", "loadgen", "--target", "local", "--output", "json", timeout=400
    )
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    try:
        wait_for(lambda: connected_workers(shared_stack) == 2, timeout_s=180, interval_s=1)
        yield shared_stack, json.loads(deployed.stdout)["outputs"]
    finally:
        destroyed = shared_stack.devenv("destroy", "--stack", "loadgen", "--target", "local", timeout=300)
        assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr

        def left() -> list[dict[str, Any]]:
            return [
                task
                for service in (names.LOADGEN_MASTER_SERVICE, names.LOADGEN_WORKER_SERVICE)
                for task in realized(shared_stack, service)
            ]

        wait_for(lambda: not left(), timeout_s=60, describe=left)
        # the kept image repository (RemovalPolicy.RETAIN) would stop a later deploy of the stack here
        shared_stack.client("ecr").delete_repository(
            repositoryName=names.LOADTEST_REPOSITORY_NAME, force=True
        )


def test_a_smoke_run_through_the_loadgen_stack_passes_and_counts_its_workers(
    loadgen_stack: tuple[Stack, dict[str, str]], tmp_path: Path
) -> None:
    stack, outputs = loadgen_stack
    done = stack.devenv(
        "loadtest", "--on", "loadgen", "--profile", "smoke", "--duration", "15s",
        "--report-dir", str(tmp_path), "--output", "json", timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["verdict"] == "pass" and summary["profile"] == "smoke" and summary["breached"] == []
    assert summary["thresholds"] and all(check["ok"] for check in summary["thresholds"])
    # the load went to the stack's ALB mirror (the stack's target URL is the ALB's DNS name, AWS's only)
    assert urlsplit(summary["target"]).port == urlsplit(stack.alb).port
    # the requests came from the stack's two realized workers, each counted
    worker_pids = {task["pid"] for task in realized(stack, names.LOADGEN_WORKER_SERVICE)}
    assert len(worker_pids) == 2
    assert {w["pid"] for w in summary["workers"]} == worker_pids
    assert all(w["requests"] > 0 for w in summary["workers"])
    assert sum(w["requests"] for w in summary["workers"]) == summary["requests"] > 0
    generator = summary["load_generator"]
    assert generator["stack"] == names.LOADGEN_STACK_NAME and generator["workers"] == 2
    # the results were the master's, from the stack's bucket in the emulator
    bucket = outputs["LoadGenResultsBucket"]
    prefix = generator["results"].removeprefix(f"s3://{bucket}/")
    assert generator["results"].startswith(f"s3://{bucket}/runs/") and prefix != generator["results"]
    stored = json.loads(
        stack.client("s3").get_object(Bucket=bucket, Key=prefix + "summary.json")["Body"].read()
    )
    assert stored["started_at"] == summary["started_at"] and stored["requests"] == summary["requests"]
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent == tmp_path
    for name in ("timeline.json", "locust.html", "locust_stats.csv", "report.html"):
        assert (run_dir / name).stat().st_size > 0, name
    assert "LlmProxyLoadGenStack" in (run_dir / "report.html").read_text()


def test_without_the_loadgen_stack_the_run_is_a_setup_error(devenv: Devenv, tmp_path: Path) -> None:
    """The aws target's SDK pointed at an emulator where nothing is deployed (a stack of its own here would
    race the module's for the machine): one error line naming the deploy, exit 2, no run folder."""
    process, endpoint = start_emulator({}, tmp_path / "emulator.log")
    try:
        env = {k: v for k, v in devenv.env.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION="us-east-1",
        )
        runs = tmp_path / "runs"
        done = subprocess.run(
            devenv.argv("loadtest", "--on", "loadgen", "--target", "aws", "--report-dir", str(runs)),
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        stop_emulator(process)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == (
        f"error: the load generator stack {names.LOADGEN_STACK_NAME} is not deployed on the aws target"
    )
    assert "devenv deploy --stack loadgen --target aws" in lines[1]
    assert not runs.exists()  # nothing half-written
