"""Child processes that cannot outlive devenv, and the clean-up of those a dead devenv left behind.

Every process devenv starts is bound to the process that started it by Linux's parent-death signal
(`prctl(PR_SET_PDEATHSIG, SIGKILL)`): when that process dies, even by `kill -9`, the kernel kills the
child. The signal fires when the *thread* that forked the child ends, so every child is forked by one
thread that lives as long as the process (`spawn`); children forked from short-lived worker threads would
be killed as soon as their thread finished.

Where the kernel offers no such signal (not Linux) or a child escapes it (a Docker container), the next
command finds what is left from the pids and start times recorded in the state file (`stop_recorded`): a
pid is signalled only while its start time matches, so a recycled pid is never touched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import psutil

from devenv.runtime import probes

PR_SET_PDEATHSIG = 1
CREATE_TIME_TOLERANCE_S = 0.05  # psutil's create_time is derived from clock ticks since boot


def _death_signal_setter() -> Callable[[], None] | None:
    """A preexec function that asks the kernel to SIGKILL the child when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def set_death_signal() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return set_death_signal


class _Spawner:
    """The one long-lived thread that forks every child (see the module docstring for why)."""

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[Future[subprocess.Popen[Any]], list[str], dict[str, Any]]]
        self._requests = queue.Queue()
        self._owner = os.getpid()
        self._preexec = _death_signal_setter()
        threading.Thread(target=self._serve, name="devenv-spawner", daemon=True).start()

    def _serve(self) -> None:
        while True:
            future, argv, kwargs = self._requests.get()
            try:
                future.set_result(subprocess.Popen(argv, preexec_fn=self._preexec, **kwargs))
            except BaseException as exc:  # handed to the caller, raised in its thread
                future.set_exception(exc)

    def spawn(self, argv: list[str], kwargs: dict[str, Any]) -> subprocess.Popen[Any]:
        future: Future[subprocess.Popen[Any]] = Future()
        self._requests.put((future, argv, kwargs))
        return future.result()


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def spawn(argv: list[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen(argv, **popen_kwargs)` for a child that dies with this process."""
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner._owner != os.getpid():  # a forked copy has no spawner thread
            _spawner = _Spawner()
        spawner = _spawner
    return spawner.spawn(argv, popen_kwargs)


@dataclass(frozen=True)
class Recorded:
    """A process as the state file recorded it: a pid is ours only while its start time matches."""

    name: str
    pid: int
    create_time: float | None

    def process(self) -> psutil.Process | None:
        """The live process, or None when it is gone or the pid now belongs to someone else."""
        try:
            process = psutil.Process(self.pid)
            if self.create_time is not None and abs(process.create_time() - self.create_time) > (
                CREATE_TIME_TOLERANCE_S
            ):
                return None
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return process
        except psutil.Error:
            return None


def alive(recorded: Iterable[Recorded]) -> list[Recorded]:
    """Those of `recorded` that still run (same pid, same start time)."""
    return [entry for entry in recorded if entry.process() is not None]


def stop_recorded(recorded: Iterable[Recorded], grace_s: float) -> list[Recorded]:
    """SIGTERM every recorded process still alive, all at once; SIGKILL what is left after `grace_s`.

    Returns those that were running. Bounded: at most `grace_s` plus a moment for the kills. A killed
    process counts as gone once it is a zombie (an adopting init may reap it seconds later)."""
    targets = {entry: process for entry in recorded if (process := entry.process()) is not None}
    _signal_all(targets.values(), signal.SIGTERM)
    gone = _all_gone(list(targets))
    if not probes.wait_until_ready(gone, grace_s).ok:
        _signal_all(targets.values(), signal.SIGKILL)
        probes.wait_until_ready(gone, 2.0)
    return list(targets)


def _signal_all(processes: Iterable[psutil.Process], sig: int) -> None:
    for process in processes:
        try:
            process.send_signal(sig)
        except psutil.Error:
            continue


def _all_gone(recorded: list[Recorded]) -> probes.Probe:
    def check() -> probes.ProbeResult:
        left = alive(recorded)
        return probes.ProbeResult(not left, f"still running: {', '.join(e.name for e in left) or 'none'}")

    return check
