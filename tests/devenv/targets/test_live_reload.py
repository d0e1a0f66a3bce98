"""Live reload: a saved change under the tasks' llmproxy source rolls the stack's llmproxy services.

The watcher alone runs on a temp folder (real inotify through watchfiles). The whole-stack tests use the
shared stack, whose tasks run a session copy of llmproxy/ (tests/conftest.py `shared_stack`): they edit
that copy, never the repository's files, and restore it (a final roll back to the original code).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.targets import live_reload
from tests.local_stack import Stack, run_devenv
from tests.waiting import wait_for

ROLL_TIMEOUT_S = 120  # a new task's start, its first health check, the old task's drain


def batches(source: Path, debounce_ms: int, edit: threading.Thread) -> list[list[str]]:
    stop = threading.Event()
    found: list[list[str]] = []

    def collect() -> None:
        for batch in live_reload.file_changes(source, debounce_ms, stop):
            found.append(batch)

    watcher = threading.Thread(target=collect, daemon=True)
    watcher.start()
    time.sleep(0.3)  # the watch is set up
    edit.start()
    edit.join()
    time.sleep(debounce_ms / 1000 + 1.0)
    stop.set()
    watcher.join(timeout=5)
    return found


def test_a_burst_of_saves_is_one_change_and_caches_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / "db.py").write_text("y = 1\n")

    def save_twice() -> None:
        (tmp_path / "app.py").write_text("x = 2\n")
        time.sleep(0.05)
        (tmp_path / "db.py").write_text("y = 2\n")
        (tmp_path / "__pycache__").mkdir()
        (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")

    found = batches(tmp_path, 300, threading.Thread(target=save_twice))
    assert found == [["app.py", "db.py"]]


def test_a_touched_file_is_a_change(tmp_path: Path) -> None:
    (tmp_path / "proxy.py").write_text("z = 1\n")
    found = batches(tmp_path, 100, threading.Thread(target=os.utime, args=(tmp_path / "proxy.py",)))
    assert found == [["proxy.py"]]


def test_watch_without_a_running_stack_says_so(tmp_path: Path) -> None:
    result = run_devenv({**os.environ, "DEVENV_STATE_DIR": str(tmp_path)}, "watch", timeout=60)
    assert result.returncode == 7, result.stdout + result.stderr
    assert "devenv is not running" in result.stderr and "Traceback" not in result.stderr


def test_up_watch_with_infra_only_is_a_usage_error(tmp_path: Path) -> None:
    env = {**os.environ, "DEVENV_STATE_DIR": str(tmp_path)}
    result = run_devenv(env, "up", "--watch", "--infra-only", timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--infra-only" in result.stderr and "Traceback" not in result.stderr


# -- the whole stack --------------------------------------------------------------------------


class Watcher:
    """`devenv watch` against the shared stack, its output collected line by line."""

    def __init__(self, stack: Stack) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devenv", "watch"],
            env={**stack.env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for("watching ")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, after: int = 0, timeout_s: float = ROLL_TIMEOUT_S) -> int:
        """Until a line (from line `after` on) holds `text`; returns its index."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for index, line in enumerate(self.lines[after:], start=after):
                if text in line:
                    return index
            assert self.process.poll() is None, f"devenv watch exited:\n{self.output()}"
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} from devenv watch in {timeout_s:.0f} s:\n{self.output()}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


class ClientLoop:
    """Chat completions through the ALB, one after another, until stopped: every status seen."""

    def __init__(self, stack: Stack) -> None:
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(stack,), daemon=True)
        self._thread.start()

    def _run(self, stack: Stack) -> None:
        while not self._stop.is_set():
            self.statuses.append(stack.chat("live reload")[0])
            time.sleep(0.05)

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.statuses


@pytest.fixture
def source(stack: Stack) -> Iterator[Path]:
    """The llmproxy copy the shared stack's tasks run; every file is put back as it was afterwards."""
    folder = Path(stack.env["DEVENV_LLMPROXY_DIR"])
    before = {path: path.read_bytes() for path in folder.rglob("*.py")}
    yield folder
    changed = [path for path, text in before.items() if path.read_bytes() != text]
    for path in changed:
        path.write_bytes(before[path])
    if changed:  # the tasks may run the edited code: roll them back onto the original
        watcher = Watcher(stack)
        try:
            os.utime(changed[0])
            watcher.wait_for("proxy: rolled in")
        finally:
            watcher.stop()


@pytest.mark.slow
def test_a_touched_file_rolls_new_tasks_with_no_error_through_the_alb(stack: Stack, source: Path) -> None:
    old_proxy = set(stack.proxy_tasks())
    watcher = Watcher(stack)
    clients = ClientLoop(stack)
    try:
        os.utime(source / "app.py")
        start = watcher.wait_for("changed: app.py")
        watcher.wait_for("proxy: rolled in", after=start)
        watcher.wait_for("dispatcher: rolled in", after=start)
    finally:
        statuses = clients.stop()
        code = watcher.stop()
    new_proxy = set(stack.proxy_tasks())
    assert new_proxy and not new_proxy & old_proxy, (old_proxy, new_proxy)
    assert len(statuses) >= 20 and set(statuses) == {200}, sorted(set(statuses))
    assert code == 0 and "stopped watching" in watcher.output()


@pytest.mark.slow
def test_a_syntax_error_keeps_the_old_tasks_serving_and_shows_the_error(stack: Stack, source: Path) -> None:
    old_proxy = set(stack.proxy_tasks())
    watcher = Watcher(stack)
    clients = ClientLoop(stack)
    try:
        main = source / "__main__.py"
        main.write_text(main.read_text() + "\ndef broken(:\n    pass\n")
        start = watcher.wait_for("changed: __main__.py")
        failed = watcher.wait_for("proxy: new task", after=start)
        watcher.wait_for("proxy: the old tasks keep serving", after=failed)
        time.sleep(3)  # the old tasks go on answering while the new code cannot start
    finally:
        statuses = clients.stop()
        watcher.stop()
    output = watcher.output()
    assert "failed to start" in output and "SyntaxError" in output, output
    assert old_proxy <= set(stack.proxy_tasks())
    assert len(statuses) >= 20 and set(statuses) == {200}, sorted(set(statuses))
    wait_for(lambda: stack.health()[0] == 200, timeout_s=10)
