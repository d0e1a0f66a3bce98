"""How long `devenv up -d --infra-only` takes to all-healthy: cold (fresh state dir) and warm.

Prints the median of N runs each (default 5). Not a test: machines are noisy; run it on demand
(`nox -s benchmark_up`) and read the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def devenv(state_dir: Path, *args: str) -> float:
    env = {**os.environ, "DEVENV_STATE_DIR": str(state_dir)}
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "devenv", *args], env=env, capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"`devenv {' '.join(args)}` failed:\n{done.stderr}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    up = ("up", "-d", "--infra-only", "--auto-ports", "--quiet")
    cold, warm = [], []
    for _ in range(args.runs):
        state_dir = Path(tempfile.mkdtemp(prefix="devenv-bench-"))
        state_dir.chmod(0o755)
        try:
            cold.append(devenv(state_dir, *up))
            devenv(state_dir, "down")
            warm.append(devenv(state_dir, *up))
            devenv(state_dir, "down")
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
    print(f"devenv up -d --infra-only (postgres, redis, emulator) to all-healthy, {args.runs} runs each")
    print(
        f"  cold (fresh state dir, initdb included): median {statistics.median(cold):.2f} s  runs {[round(x, 2) for x in cold]}"
    )
    print(
        f"  warm (existing data dir):                median {statistics.median(warm):.2f} s  runs {[round(x, 2) for x in warm]}"
    )


if __name__ == "__main__":
    main()
