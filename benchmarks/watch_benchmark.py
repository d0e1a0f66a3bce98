"""Save-to-serving of live reload: from a saved edit under llmproxy/ to the first answer through the ALB
from a task running the edit, median of N edits (default 5). Not a test: machines are noisy; run it on
demand (`nox -s benchmark_watch`) and read the figures.

It runs its own stack (`devenv up -d --auto-ports` in a throw-away state dir) whose tasks run a temp copy
of llmproxy/ (`llmproxy_dir`), and `devenv watch` against it. Each edit sets `__version__` in the copy's
`__init__.py` to a new value; `GET /health` through the ALB reports the version of the task that answered,
so the first answer with the new value is the first answer from a new task. Also printed: the time until
`devenv watch` reports the proxy's roll complete (the old task drained and stopped).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path

from up_benchmark import devenv

from devenv.config import INSTANT_MOCK_UPSTREAM, environment

REPOSITORY = Path(__file__).resolve().parents[1]
TIMEOUT_S = 180.0


def served_version(alb: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{alb}/health", timeout=5) as response:
            return str(json.loads(response.read()).get("version"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def serves(alb: str, version: str) -> bool:
    return served_version(alb) == version


def said(lines: list[str], after: int, text: str) -> bool:
    return any(text in line for line in lines[after:])


def wait_until(check: Callable[[], bool], what: str) -> float:
    """The moment `check` first holds (polled every 20 ms)."""
    deadline = time.perf_counter() + TIMEOUT_S
    while time.perf_counter() < deadline:
        if check():
            return time.perf_counter()
        time.sleep(0.02)
    sys.exit(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--edits", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="devenv-bench-watch-"))
    work.chmod(0o755)
    source = work / "llmproxy"
    shutil.copytree(REPOSITORY / "llmproxy", source, ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        **os.environ,
        "DEVENV_STATE_DIR": str(work / "state"),
        "DEVENV_LLMPROXY_DIR": str(source),
        "DEVENV_AUTOSCALING": "false",
        **environment(INSTANT_MOCK_UPSTREAM),
    }
    lines: list[str] = []
    watcher: subprocess.Popen[str] | None = None
    serving, rolled = [], []
    try:
        devenv(env, "up", "-d", "--quiet", "--auto-ports")
        alb = json.loads(devenv(env, "status", "--output", "json"))["alb_url"].replace(
            "localhost", "127.0.0.1"
        )
        watcher = subprocess.Popen(
            [sys.executable, "-m", "devenv", "watch"],
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert watcher.stdout is not None
        stream = watcher.stdout
        threading.Thread(target=lambda: lines.extend(stream), daemon=True).start()
        wait_until(partial(said, lines, 0, "watching "), "devenv watch to start")
        init = source / "__init__.py"
        for edit in range(1, args.edits + 1):
            version = f"0.1.0+edit{edit}"
            seen = len(lines)
            began = time.perf_counter()
            init.write_text(re.sub(r'__version__ = ".*"', f'__version__ = "{version}"', init.read_text()))
            answered = wait_until(partial(serves, alb, version), f"an answer from version {version}")
            done = wait_until(partial(said, lines, seen, "proxy: rolled in"), "the roll to complete")
            serving.append(answered - began)
            rolled.append(done - began)
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait(timeout=30)
        subprocess.run(
            [sys.executable, "-m", "devenv", "down", "--volumes", "--quiet"],
            env=env,
            check=False,
            timeout=180,
        )
        shutil.rmtree(work, ignore_errors=True)
    print(f"devenv watch: save to serving, {len(serving)} edit(s) of llmproxy/__init__.py")
    print(
        f"  first answer from a new task: median {statistics.median(serving):.2f} s  runs {[round(x, 2) for x in serving]}"
    )
    print(
        f"  roll complete (old task gone): median {statistics.median(rolled):.2f} s  runs {[round(x, 2) for x in rolled]}"
    )


if __name__ == "__main__":
    main()
