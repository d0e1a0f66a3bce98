"""Children that die with their parent, and the clean-up of what a dead supervisor left (real processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from devenv.runtime import crash
from devenv.runtime.children import Recorded, alive, stop_recorded
from devenv.runtime.state import StateDir
from tests.waiting import wait_for

# A parent that spawns `sleep` from a worker thread that then ends, reports the child, and waits to be killed.
PARENT = textwrap.dedent(
    """
    import json, sys, threading, psutil
    from devenv.runtime.children import spawn
    found = {}
    worker = threading.Thread(target=lambda: found.update(child=spawn(["sleep", "120"])))
    worker.start(); worker.join()
    pid = found["child"].pid
    print(json.dumps({"pid": pid, "create_time": psutil.Process(pid).create_time()}), flush=True)
    sys.stdin.read()
    """
)


def recorded(name: str, process: subprocess.Popen[bytes]) -> Recorded:
    return Recorded(name, process.pid, psutil.Process(process.pid).create_time())


def test_a_child_outlives_the_thread_that_spawned_it_and_dies_with_the_process() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = Recorded("sleep", **json.loads(parent.stdout.readline()))
        time.sleep(0.3)  # the spawning thread has ended: the child must still run
        assert alive([child]) == [child]
        parent.kill()  # kill -9: no clean-up code of the parent runs
        parent.wait()
        wait_for(lambda: not alive([child]), timeout_s=5, interval_s=0.02)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_stop_recorded_stops_leftovers_and_never_a_reused_pid() -> None:
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 120"], start_new_session=True)
    polite = subprocess.Popen(["sleep", "120"], start_new_session=True)
    bystander = subprocess.Popen(["sleep", "120"])
    try:
        time.sleep(0.1)  # the shell has set its trap
        # the bystander's pid recorded with another start time: a pid reused since the record was made
        reused = Recorded("reused", bystander.pid, psutil.Process(bystander.pid).create_time() - 100)
        stopped = stop_recorded([recorded("stubborn", stubborn), recorded("polite", polite), reused], 1.0)
        assert {entry.name for entry in stopped} == {"stubborn", "polite"}
        assert stubborn.wait(5) == -signal.SIGKILL
        assert polite.wait(5) == -signal.SIGTERM
        assert bystander.poll() is None
    finally:
        for process in (stubborn, polite, bystander):
            process.kill()
            process.wait()


def test_a_crashed_supervisor_is_detected_and_cleared(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.ensure()
    leftover = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        left = recorded("redis", leftover)
        state.write(
            {
                "supervisor": {"pid": 999999, "phase": "ready", "error": None},
                "services": {"redis": {"pid": left.pid, "create_time": left.create_time, "state": "running"}},
                "facts": {"runtime": "native"},
            }
        )
        found = crash.detect(state)
        assert found is not None
        assert found.line() == (
            "the devenv supervisor (pid 999999) died while ready without stopping: "
            "1 of its processes still run (redis)"
        )
        assert crash.clear(state, found) == [left]
        assert leftover.wait(5) == -signal.SIGTERM
        after = state.read()["supervisor"]
        assert after["phase"] == "stopped" and "died while ready" in after["error"]
        assert crash.detect(state) is None  # cleared once, reported once
    finally:
        leftover.kill()
        leftover.wait()


def test_a_clean_stop_or_a_running_supervisor_is_no_crash(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.ensure()
    state.write({"supervisor": {"pid": os.getpid(), "phase": "stopped"}, "services": {}})
    assert crash.detect(state) is None
    state.write({"supervisor": {"pid": os.getpid(), "phase": "ready"}, "services": {}})
    lock = state.acquire_supervisor_lock()
    try:
        assert crash.detect(state) is None  # a supervisor holds the lock: it runs
    finally:
        lock.close()
    assert crash.detect(state) is not None
