"""How long `devenv` takes to answer before it does any work, median of N runs (default 5). Not a test:
machines are noisy; run it on demand (`nox -s benchmark_cli`) and read the figures.

Each run starts a fresh `devenv` process, as a developer's shell and every subprocess test do:
  --help             the command list (no settings loaded)
  --version          the version
  status             with no stack running (a private empty state dir): settings loaded, exit 7

Each figure is the wall time, and beside it the CPU time (user + system), which a busy machine inflates
less. `--devenv A B` times several `devenv` executables in the same run, interleaved (run i of every command of
A, then of B), so that both see the same machine: e.g. a checkout of main beside this one.

    uv run python benchmarks/cli_benchmark.py [--runs 5] [--devenv PATH ...]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {"--help": ["--help"], "--version": ["--version"], "status": ["status"]}
EXPECTED_EXIT = {"--help": 0, "--version": 0, "status": 7}  # status: no stack running


def cpu_seconds() -> float:
    """User + system CPU time of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(executable: str, args: list[str], env: dict[str, str], expected: int) -> tuple[float, float]:
    """The wall time and the CPU time of one run."""
    began, cpu = time.perf_counter(), cpu_seconds()
    done = subprocess.run([executable, *args], env=env, capture_output=True, text=True, check=False)
    took, cpu_took = time.perf_counter() - began, cpu_seconds() - cpu
    if done.returncode != expected:
        sys.exit(f"`{executable} {' '.join(args)}` exited {done.returncode}, not {expected}:\n{done.stderr}")
    return took, cpu_took


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
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
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
            wall = [w for w, _ in times[(executable, name)]]
            cpu = [c for _, c in times[(executable, name)]]
            print(
                f"  devenv {name:<10} median {statistics.median(wall):.2f} s (CPU {statistics.median(cpu):.2f} s)"
                f"  runs {[round(x, 2) for x in wall]}"
            )


if __name__ == "__main__":
    main()
