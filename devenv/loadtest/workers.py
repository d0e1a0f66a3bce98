"""Locust worker processes on this machine, under one Locust master (`devenv loadtest --workers N`).

Locust's own distributed mode: the master (`--master --expect-workers N`) runs the shape, the thresholds
and the summary; each worker (`--worker`) runs users and reports its stats to the master. devenv starts
the workers itself, as children that die with devenv (devenv.runtime.children), watches them, and after
the run says which ones died: a run that lost a worker measured less load than planned, so its verdict
is `degraded` (exit 9, devenv.loadtest.summary.degrade).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv.loadtest.summary import degrade
from devenv.runtime import children

QUIT_GRACE_S = 10.0  # the master sends its workers `quit`; they send a last report and exit
WORKER_CONNECT_WAIT_S = 60  # how long the master waits for every worker before it gives up


@dataclass
class Worker:
    index: int
    process: subprocess.Popen[bytes]
    log_path: Path
    ended_at: float | None = None  # wall clock when devenv saw it end
    stopped_by_devenv: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def describe_exit(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"


def default_count() -> int:
    """One worker per core: the default of `--workers`."""
    return os.cpu_count() or 1


def master_argv(count: int, port: int) -> list[str]:
    """What makes a Locust process the master of `count` workers, listening on 127.0.0.1 only."""
    return [
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
        "--expect-workers",
        str(count),
        "--expect-workers-max-wait",
        str(WORKER_CONNECT_WAIT_S),
    ]


def start(count: int, locust: list[str], port: int, run_dir: Path, env: dict[str, str]) -> list[Worker]:
    """`count` workers of the master on `port`; `locust` is the command up to and including `-f FILES`."""
    workers = []
    for index in range(1, count + 1):
        log_path = run_dir / f"locust-worker-{index}.log"
        with open(log_path, "wb") as log:
            process = children.spawn(
                [
                    *locust,
                    "--worker",
                    "--master-host",
                    "127.0.0.1",
                    "--master-port",
                    str(port),
                    "--loglevel",
                    "WARNING",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        workers.append(Worker(index, process, log_path))
    return workers


def watch(workers: list[Worker], say: Callable[[str], None]) -> bool:
    """Note the workers that ended since the last look (saying so); True while any still runs."""
    for worker in workers:
        if worker.ended_at is None and worker.process.poll() is not None:
            worker.ended_at = time.time()
            say(f"worker {worker.index} (pid {worker.pid}) {worker.describe_exit()}; log {worker.log_path}")
    return any(worker.ended_at is None for worker in workers)


def stop(workers: list[Worker]) -> None:
    """After the master ended: let the workers finish on its `quit`, then SIGTERM, then SIGKILL."""
    deadline = time.monotonic() + QUIT_GRACE_S
    for worker in workers:
        _wait(worker, max(0.0, deadline - time.monotonic()))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = [w for w in workers if w.process.poll() is None]
        for worker in left:
            worker.stopped_by_devenv = True
            worker.process.send_signal(sig)
        for worker in left:
            _wait(worker, 5.0)


def _wait(worker: Worker, timeout_s: float) -> None:
    try:
        worker.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return
    if worker.ended_at is None:
        worker.ended_at = time.time()


def account(summary: dict[str, Any], workers: list[Worker]) -> dict[str, Any]:
    """The summary with one row per worker (pid, requests the master counted from it, how it ended) and
    the verdict `degraded` when one died during the run: killed by a signal devenv did not send, or gone
    before the run ended (before it started: a non-zero exit)."""
    if not workers:
        return summary
    counted = {row["pid"]: row["requests"] for row in summary.get("workers") or []}
    started = summary.get("started_at")
    run_end = float(started) + float(summary["duration_s"]) if started else None
    rows, lost = [], []
    for worker in workers:
        code = worker.process.returncode
        died = not worker.stopped_by_devenv and (
            (code is not None and code < 0)
            or (run_end is not None and worker.ended_at is not None and worker.ended_at < run_end)
            or (run_end is None and code not in (None, 0))
        )
        when = ""
        if died and started and worker.ended_at is not None:
            when = f" {max(0.0, worker.ended_at - float(started)):.1f} s into the run"
        if died:
            lost.append(
                f"worker {worker.index} (pid {worker.pid}) {worker.describe_exit()}{when}; its log: {worker.log_path}"
            )
        rows.append(
            {
                "index": worker.index,
                "pid": worker.pid,
                "requests": counted.get(worker.pid, 0),
                "exit": worker.describe_exit(),
                "lost": died,
            }
        )
    summary["workers"] = rows
    return degrade(summary, lost)
