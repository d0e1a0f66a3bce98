"""How long `devenv` takes to answer before it does any work, median of N runs (default 5). Not a test:
machines are noisy; run it on demand (`nox -s benchmark_cli`) and read the figures.

Each run starts a fresh `devenv` process, as a developer's shell and every subprocess test do:
  --help             the command list (no settings loaded)
  --version          the version
  status             with no stack running (a private empty state dir): settings loaded, exit 7

`--devenv A B` times several `devenv` executables in the same run, interleaved (run i of every command of
A, then of B), so that both see the same machine: e.g. a checkout of main beside this one.

    uv run python benchmarks/cli_benchmark.py [--runs 5] [--devenv PATH ...]
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

COMMANDS = {"--help": ["--help"], "--version": ["--version"], "status": ["status"]}
EXPECTED_EXIT = {"--help": 0, "--version": 0, "status": 7}  # status: no stack running


def timed(executable: str, args: list[str], env: dict[str, str], expected: int) -> float:
    began = time.perf_counter()
    done = subprocess.run([executable, *args], env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - began
    if done.returncode != expected:
        sys.exit(f"`{executable} {' '.join(args)}` exited {done.returncode}, not {expected}:\n{done.stderr}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--devenv",
        nargs="+",
        default=[str(Path(sys.executable).parent / "devenv")],
        help="the devenv executables to time [this environment's]",
    )
    args = parser.parse_args()
    state_dir = Path(tempfile.mkdtemp(prefix="devenv-bench-cli-"))
    env = {**os.environ, "DEVENV_STATE_DIR": str(state_dir)}
    times: dict[tuple[str, str], list[float]] = {}
    try:
        for _ in range(args.runs):
            for executable in args.devenv:
                for name, command in COMMANDS.items():
                    took = timed(executable, command, env, EXPECTED_EXIT[name])
                    times.setdefault((executable, name), []).append(took)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    for executable in args.devenv:
        print(f"{executable}, {args.runs} run(s) each")
        for name in COMMANDS:
            runs = times[(executable, name)]
            print(
                f"  devenv {name:<10} median {statistics.median(runs):.2f} s  runs {[round(x, 2) for x in runs]}"
            )


if __name__ == "__main__":
    main()
