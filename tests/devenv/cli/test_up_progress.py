"""The daily loop on a whole stack: `up -d` shows its steps (never the CDK CLI's output), `status` shows
endpoints and the ALB's view of each task and nothing stale after `down`, `logs <service> -f` follows a
task started after it began.

One stack for the module, with its own cloud-assembly cache so the cold path runs: synth, then the real
`cdk bootstrap` and `cdk deploy` (whose output must stay in logs/cdk.log). Each test leaves it running.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from rich.console import Console

from devenv.cli import lifecycle, progress_view
from devenv.cli.application import Application
from devenv.config import load_settings
from devenv.runtime.state import StateDir
from tests.conftest import reachable_tmpdir
from tests.local_stack import PORT_SETTINGS, run_devenv
from tests.ports import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

STEPS = ("services", "synth", "bootstrap", "deploy", "realize")
CDK_OUTPUT = ("LlmProxyStack |", "CDKToolkit |", "NodeVersionSupportWarning", "Bootstrapping environment")


@dataclass
class Stack:
    env: dict[str, str]
    ports: dict[str, int]
    up_output: str

    def devenv(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_devenv(self.env, *args, timeout=timeout)

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.devenv("status", "--output", "json").stdout))

    def log(self, name: str) -> str:
        path = os.path.join(self.env["DEVENV_STATE_DIR"], "logs", f"{name}.log")
        with open(path, encoding="utf-8") as handle:
            return handle.read()

    def ecs(self) -> Any:
        return boto3.client(
            "ecs",
            endpoint_url=f"http://127.0.0.1:{self.ports['emulator_port']}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    state_dir = reachable_tmpdir("devenv-test-up-")
    cache = reachable_tmpdir("devenv-test-up-cdk-")  # cold: the CDK CLI deploys
    ports = {name: free_port() for name in PORT_SETTINGS}
    env = {
        **os.environ,
        "DEVENV_STATE_DIR": str(state_dir),
        "DEVENV_CDK_CACHE_DIR": str(cache),
        "DEVENV_AUTOSCALING": "false",
        **{f"DEVENV_{name.upper()}": str(port) for name, port in ports.items()},
    }
    env.pop("COLUMNS", None)
    up = subprocess.run(
        [sys.executable, "-m", "devenv", "up", "-d"],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield Stack(env, ports, up.stdout + up.stderr)
    finally:
        subprocess.run(
            [sys.executable, "-m", "devenv", "down"], env=env, capture_output=True, timeout=180, check=False
        )
        shutil.rmtree(state_dir, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


def test_up_d_shows_its_steps_and_none_of_the_cdk_clis_output(stack: Stack) -> None:
    out = stack.up_output
    for step in STEPS:
        assert f"✓ {step}:" in out, out
    assert "synthesized (" in out  # the cold path ran
    assert re.search(r"✓ deploy: resources (\d+)/\1 ", out), out
    for raw in CDK_OUTPUT:
        assert raw not in out, f"the CDK CLI's {raw!r} reached the terminal:\n{out}"
    assert "㊙" not in out and ":secret:llm-proxy/" in out  # ARNs print as they are
    alb = f"http://localhost:{stack.ports['alb_port']}"
    assert re.search(rf"AlbUrl\s+{re.escape(alb)}\b", out), out  # the ALB mirror, not AWS's DNS name
    assert "export AWS_DEFAULT_REGION=us-east-1" in out
    assert "LlmProxyStack |" in stack.log("cdk")  # where the CLI's output went instead
    assert "✓ realize:" in stack.log("supervisor")  # what the background supervisor did


def test_up_on_a_terminal_ends_on_one_screen_listing_every_service_realized_ones_too(stack: Stack) -> None:
    """What `up -d` leaves on a 120x40 terminal: the final steps block, then the report; its table has
    every service the stack runs (the Aurora and ElastiCache endpoints, the ALB mirror and the ECS tasks
    too, not only those started before realize), and all of it fits 30 lines."""
    state = StateDir(Path(stack.env["DEVENV_STATE_DIR"]))
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120, height=40, emoji=False)
    app = Application(settings=load_settings(overrides={"state_dir": state.root}), out=terminal, err=terminal)
    terminal.print(progress_view.render(state.read()))
    lifecycle._report(app, state, "all services healthy in 1.00 s", verbose=False)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", screen.getvalue())
    lines = shown.splitlines()
    assert len(lines) <= 30, f"{len(lines)} lines:\n{shown}"
    services = {svc["name"]: svc for svc in stack.status()["services"]}
    names = list(services)
    assert {"aurora", "elasticache", "alb"} <= set(names), names
    assert any(name.startswith("proxy-") for name in names), names
    table_names = {line.split()[0] for line in lines if line.strip()}
    assert set(names) <= table_names, shown
    # the ALB's URL as the stack runs it (another test of this module moves a busy ALB port)
    assert services["alb"]["url"].startswith("http://localhost:"), services["alb"]
    assert re.search(rf"alb\s+{re.escape(services['alb']['url'])}\s", shown), shown
    assert "export AWS_ENDPOINT_URL=" in shown and "AWS_DEFAULT_REGION=us-east-1" in shown, shown

    verbose = io.StringIO()  # --verbose: the ports and the stack's outputs as well
    app.out = Console(file=verbose, force_terminal=True, width=120, emoji=False)
    lifecycle._report(app, state, "all services healthy in 1.00 s", verbose=True)
    assert "AlbUrl" in verbose.getvalue() and "admin=" in verbose.getvalue()


def test_status_shows_endpoints_and_each_tasks_health_as_the_alb_sees_it(stack: Stack) -> None:
    services = {svc["name"]: svc for svc in stack.status()["services"]}
    assert services["aurora"]["url"] == f"postgresql://127.0.0.1:{stack.ports['aurora_port']}"
    assert services["elasticache"]["url"] == f"rediss://127.0.0.1:{stack.ports['elasticache_port']}"

    def proxy_task() -> dict[str, Any] | None:
        ecs = {svc["name"]: svc for svc in stack.status().get("ecs_services", [])}
        tasks = ecs.get("proxy", {}).get("tasks", [])
        return tasks[0] if tasks and tasks[0]["target_health"] == "healthy" else None

    task = wait_for(proxy_task, timeout_s=90, interval_s=1)  # two passed checks, 10 s apart
    assert task["target"].startswith("127.0.0.1:")
    text = stack.devenv("status")
    assert text.returncode == 0
    assert f"ALB target {task['target']} healthy" in " ".join(text.stdout.split())


def test_logs_follow_of_a_service_shows_a_task_started_after_it_began(stack: Stack) -> None:
    """The follower shows the running task's last line first (`-n 1`): only then has it taken its offsets,
    so the stop starts after that. (Stopping at once raced the follower's start-up, which takes 10 s and
    more on a loaded machine: the old task's last lines and the replacement's first ones could be written
    before it looked, and `-n 0` rightly skipped them.)"""
    lines: list[str] = []
    follower = subprocess.Popen(
        [sys.executable, "-m", "devenv", "logs", "proxy", "-f", "-n", "1"],
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    reader = threading.Thread(target=lambda: lines.extend(iter(follower.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()

    def seen(what: str, predicate: Callable[[list[str]], bool], timeout_s: float) -> None:
        try:
            wait_for(lambda: predicate(list(lines)), timeout_s)
        except AssertionError:
            raise AssertionError(
                f"{what} not within {timeout_s:.0f} s; `devenv logs proxy -f` printed:\n" + "".join(lines)
            ) from None

    try:
        ecs = stack.ecs()
        cluster = ecs.list_clusters()["clusterArns"][0]
        [old] = ecs.list_tasks(cluster=cluster, serviceName="proxy", desiredStatus="RUNNING")["taskArns"]
        stopped = f"proxy-{old.rsplit('/', 1)[-1][:8]} | "
        seen("the running task's last line", lambda got: any(line.startswith(stopped) for line in got), 60)
        following_since = len(lines)
        ecs.stop_task(cluster=cluster, task=old, reason="a replacement for logs -f to follow")
        replacement = wait_for(
            lambda: [
                arn
                for arn in ecs.list_tasks(cluster=cluster, serviceName="proxy", desiredStatus="RUNNING")[
                    "taskArns"
                ]
                if arn != old
            ],
            timeout_s=60,
        )[0]
        process = f"proxy-{replacement.rsplit('/', 1)[-1][:8]} | "
        seen(
            f"the replacement's {process!r}... Uvicorn running line",
            lambda got: any(line.startswith(process) and "Uvicorn running" in line for line in got),
            60,
        )
        # the old task's stop: ECS starts the replacement as the stop begins, so its last lines (SIGTERM,
        # drain, shutdown) may come after the replacement's first ones
        seen(
            f"a line of the stopped task {stopped!r} after its stop",
            lambda got: any(line.startswith(stopped) for line in got[following_since:]),
            30,
        )
    finally:
        follower.terminate()
        follower.wait(10)


def test_status_after_down_shows_nothing_stale_and_the_next_up_is_warm(stack: Stack) -> None:
    assert stack.devenv("down", timeout=180).returncode == 0
    after = stack.devenv("status")
    assert after.returncode == 7  # NotRunningError's code (README: exit codes)
    assert "not running" in after.stdout
    assert "ECS services" not in after.stdout and "ALB mirror" not in after.stdout
    document = json.loads(stack.devenv("status", "--output", "json").stdout)
    assert document["running"] is False and document["services"] == []
    assert "ecs_services" not in document and "targets" not in document

    again = stack.devenv("up", "-d", timeout=280)  # leave the stack running, as found
    assert again.returncode == 0, again.stdout + again.stderr
    assert "✓ synth: cached (" in again.stdout
    assert stack.status()["ecs_services"]


def test_auto_ports_moves_a_busy_alb_port_and_the_alb_mirror_listens_there(stack: Stack) -> None:
    """`up --auto-ports` with the ALB port taken: the mirror listens on the free port claimed in its place,
    and that is the URL `up` prints and waits on (it used to bind the setting's port regardless)."""
    assert stack.devenv("down", timeout=180).returncode == 0
    busy = stack.ports["alb_port"]
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the stopped mirror's TIME_WAITs
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        up = stack.devenv("up", "-d", "--auto-ports", timeout=280)  # leaves the stack running, as found
        assert up.returncode == 0, up.stdout + up.stderr
        alb_url = stack.status()["alb_url"]
        assert alb_url != f"http://localhost:{busy}", alb_url
        assert re.search(rf"AlbUrl\s+{re.escape(alb_url)}\b", up.stdout), up.stdout
        with urllib.request.urlopen(f"{alb_url}/health", timeout=10) as response:
            assert response.status == 200
