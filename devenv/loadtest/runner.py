"""Run Locust in a subprocess (its gevent patching must never reach devenv's own process).

Headless runs follow a profile's shape and end with the summary the locustfile writes; `--web`
starts Locust's UI on 127.0.0.1 with the same locustfile. With `workers` > 0 that Locust process is the
master of as many worker processes (devenv.loadtest.workers). Before either, a preflight makes an
unreachable target or a refused management token a clear set-up error (exit 2), not a failed run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv.errors import TargetError
from devenv.loadtest import workers as locust_workers
from devenv.loadtest.summary import SUMMARY_FILE
from devenv.runtime.logfiles import tail
from devenv.runtime.ports import free_port
from devenv.targets import signals
from devenv.targets.aws_api import AwsApi
from devenv.targets.endpoints import Endpoint
from devenv.targets.management import TOKEN_REFUSED, UNREACHABLE, ManagementClient, ManagementError

# In the load tests folder (the `loadtests_dir` setting):
LOCUSTFILE = "locustfile.py"
SHAPES = "shapes.py"
THRESHOLDS = "thresholds.yaml"
LOG_FILE = "locust.log"
HTML_FILE = "locust.html"
STOP_GRACE_S = 20.0
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class RunPlan:
    endpoint: Endpoint
    run_dir: Path
    thresholds_file: Path
    profile: str | None
    loadtests_dir: Path
    users: int | None = None
    duration: str | None = None
    ramp_step: str | None = None
    planned_s: float = 0.0
    api_key: str | None = None
    aws: AwsApi | None = None  # the target's AWS APIs, for the report's signals
    no_aws_reason: str = "the target's AWS APIs are unknown"  # why signals are not read when aws is None
    workers: int = 0  # Locust worker processes under one master; 0: a single Locust process


def require_locustfile(loadtests_dir: Path) -> None:
    """The locustfile and load shapes are the project's files: say where they were looked for."""
    missing = [name for name in (LOCUSTFILE, SHAPES) if not (loadtests_dir / name).is_file()]
    if missing:
        raise TargetError(
            f"no {' or '.join(missing)} in {loadtests_dir}",
            "run devenv from the project root, or set loadtests_dir (DEVENV_LOADTESTS_DIR) to the load tests folder",
        )


def preflight(endpoint: Endpoint, api_key: str | None, timeout_s: float = 5.0) -> None:
    """The target answers, and (unless talking to an upstream directly) takes the management token."""
    try:
        ManagementClient(endpoint.url, None, timeout_s).call("GET", "/health")
    except ManagementError as exc:
        if exc.status == UNREACHABLE:
            raise
        if exc.status >= 500:
            raise TargetError(
                f"the target {endpoint.url} is not healthy: {exc.message}",
                "look at the proxy's log (`devenv logs proxy`) or its database; run the load test once it is healthy",
            ) from None
    if api_key:
        return
    if not endpoint.management_token:
        raise TargetError(
            f"no management token for {endpoint.url}",
            "pass --management-token or set MANAGEMENT_TOKEN (or --api-key to call an upstream directly)",
        )
    try:
        ManagementClient(endpoint.url, endpoint.management_token, timeout_s).projects()
    except ManagementError as exc:
        if exc.status in TOKEN_REFUSED or exc.status == UNREACHABLE:
            raise
        raise TargetError(
            exc.message, "is this an LLM Proxy? to call an OpenAI-compatible server directly, pass --api-key"
        ) from None


def locust_command(plan: RunPlan) -> list[str]:
    """Locust with the project's locustfile (and the profile's shape): what master and workers share."""
    files = str(plan.loadtests_dir / LOCUSTFILE)
    if plan.profile is not None:
        files += "," + str(plan.loadtests_dir / SHAPES)
    return [sys.executable, "-m", "locust", "-f", files]


def locust_argv(plan: RunPlan, web_port: int | None = None, master_port: int | None = None) -> list[str]:
    argv = [
        *locust_command(plan),
        "--host",
        plan.endpoint.url,
        "--thresholds",
        str(plan.thresholds_file),
        "--run-dir",
        str(plan.run_dir),
        "--html",
        str(plan.run_dir / HTML_FILE),
        "--csv",
        str(plan.run_dir / "locust"),
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
    ]
    if plan.profile is not None:
        argv += ["--load-profile", plan.profile]
    if plan.users is not None:
        argv += ["--load-users", str(plan.users)]
    if plan.duration is not None:
        argv += ["--load-duration", plan.duration]
    if plan.ramp_step is not None:
        argv += ["--load-step", plan.ramp_step]
    if master_port is not None:
        argv += locust_workers.master_argv(plan.workers, master_port)
    if web_port is None:
        argv += ["--headless", "--only-summary"]
    else:
        argv += ["--web-host", "127.0.0.1", "--web-port", str(web_port)]
    return argv


def _environment(plan: RunPlan) -> dict[str, str]:
    """Secrets go to Locust through its environment, never on a command line others can read."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LOADTEST_API_KEY", None)
    env["LOADTEST_MANAGEMENT_TOKEN"] = plan.endpoint.management_token or ""
    if plan.api_key:
        env["LOADTEST_API_KEY"] = plan.api_key
    return env


def run_headless(plan: RunPlan, progress: Callable[[str], None]) -> dict[str, Any]:
    """Run the profile to its end; the summary the locustfile wrote (set-up errors raise TargetError)."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    log_path = plan.run_dir / LOG_FILE
    sampler = signals.TaskCountSampler(plan.aws).start() if plan.aws else None
    master_port = free_port() if plan.workers else None
    workers: list[locust_workers.Worker] = []
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            locust_argv(plan, master_port=master_port),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_environment(plan),
            preexec_fn=_die_with_parent,
        )
        started = time.monotonic()
        deadline = started + plan.planned_s + 120.0
        next_note = started + 10.0
        try:
            if master_port is not None:
                workers = locust_workers.start(
                    plan.workers, locust_command(plan), master_port, plan.run_dir, _environment(plan)
                )
            workers_gone_at: float | None = None
            while process.poll() is None:
                now = time.monotonic()
                if workers and workers_gone_at is None and not locust_workers.watch(workers, progress):
                    workers_gone_at = now  # at the end of a run too: the master quits its workers first
                if workers_gone_at is not None and now - workers_gone_at > locust_workers.QUIT_GRACE_S:
                    progress("every Locust worker has ended and the master did not; stopping it")
                    _stop(process)
                    break
                if now > deadline:
                    progress("Locust ran past its planned length; stopping it")
                    _stop(process)
                    break
                if now >= next_note:
                    progress(f"  {now - started:.0f}s of ~{plan.planned_s:.0f}s")
                    next_note = now + 10.0
                time.sleep(0.2)
        except KeyboardInterrupt:
            progress("interrupted: stopping Locust (the report covers what ran)")
            _stop(process)
        finally:
            locust_workers.watch(workers, progress)
            locust_workers.stop(workers)
    summary = locust_workers.account(read_summary(plan.run_dir, process.returncode, log_path), workers)
    return with_signals(plan, summary, sampler)


def run_web(
    plan: RunPlan, port: int, on_ready: Callable[[str], None], on_worker_end: Callable[[str], None]
) -> dict[str, Any]:
    """Serve Locust's web UI until Ctrl-C/SIGTERM; the summary Locust wrote as it quit (of the last run;
    `started_at` is None when none ran). Locust ending without one raises TargetError, with its log."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    log_path = plan.run_dir / LOG_FILE
    url = f"http://127.0.0.1:{port}"
    sampler = signals.TaskCountSampler(plan.aws).start() if plan.aws else None
    master_port = free_port() if plan.workers else None
    workers: list[locust_workers.Worker] = []
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                locust_argv(plan, web_port=port, master_port=master_port),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_environment(plan),
                preexec_fn=_die_with_parent,
            )
            try:
                if master_port is not None:
                    workers = locust_workers.start(
                        plan.workers, locust_command(plan), master_port, plan.run_dir, _environment(plan)
                    )
                _wait_for_ui(process, url, log_path, plan.workers)
                on_ready(url)
                while process.poll() is None:
                    locust_workers.watch(workers, on_worker_end)
                    time.sleep(0.2)
            except KeyboardInterrupt:
                _stop(process)
            finally:
                locust_workers.watch(workers, on_worker_end)
                locust_workers.stop(workers)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if sampler:
            sampler.stop()
    summary = locust_workers.account(read_summary(plan.run_dir, process.returncode, log_path), workers)
    return with_signals(plan, summary, sampler)


def with_signals(
    plan: RunPlan, summary: dict[str, Any], sampler: signals.TaskCountSampler | None
) -> dict[str, Any]:
    """The summary with what the target's CloudWatch, ECS and Auto Scaling said over the run (`signals`,
    its `time_scale`), rewritten to summary.json; what could not be read goes to `errors`, the verdict
    stands."""
    if sampler:
        sampler.stop()
    summary.setdefault("errors", [])
    summary["signals"] = summary["time_scale"] = None
    if plan.aws is None:
        summary["errors"].append(f"signals not read: {plan.no_aws_reason}")
    elif summary.get("started_at"):
        started = float(summary["started_at"])
        found = signals.read(plan.aws, started, started + float(summary["duration_s"]), sampler)
        summary["signals"] = found
        summary["time_scale"] = found["time_scale"]
        summary["errors"] += [f"signals: {e}" for e in found["errors"]]
    else:
        try:
            summary["time_scale"] = plan.aws.time_scale()
        except TargetError as exc:
            summary["errors"].append(f"signals: time_scale: {exc.message}")
    (plan.run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM Locust if devenv dies, so no load generator is orphaned."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the parent's own clean-up still stops Locust


def _raise_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _wait_for_ui(
    process: subprocess.Popen[bytes], url: str, log_path: Path, workers: int, timeout_s: float = 60.0
) -> None:
    """Until the UI answers and (distributed) every worker has connected, so a first swarm uses them all."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TargetError(
                f"Locust's web UI exited at start (code {process.returncode}):\n{tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(url + "/stats/requests", timeout=1) as response:
                if len(json.loads(response.read()).get("workers") or []) >= workers:
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.2)
    _stop(process)
    raise TargetError(
        f"Locust's web UI did not answer on {url} with {workers} workers within {timeout_s:.0f}s:\n"
        + tail(log_path)
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT, as Ctrl-C (Locust then writes its HTML report and our summary; on SIGTERM it writes no
    HTML), SIGKILL after a grace period."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_summary(run_dir: Path, returncode: int | None, log_path: Path) -> dict[str, Any]:
    try:
        summary: dict[str, Any] = json.loads((run_dir / SUMMARY_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        how = (
            f"was killed (it did not stop within {STOP_GRACE_S:.0f} s of Ctrl-C, or the system killed it)"
            if returncode == -signal.SIGKILL
            else f"ended (exit {returncode})"
        )
        raise TargetError(
            f"Locust {how} without writing its summary; its log ({log_path}) ends with:\n" + tail(log_path),
            "fix the error above (a broken locustfile or option), then run again",
        ) from None
    return summary
