"""`devenv deploy --target local` wall time, cold and warm (median of N, default 5). Not a test.

Starts Postgres and Redis (devenv's supervisor, free ports) and the emulator (`python -m devenv.emulator`).
  cold:  an empty synth cache and a fresh emulator: synth + `cdk bootstrap` + `cdk deploy` + verification
  warm:  the same app again on the same emulator: the cached assembly, no bootstrap, `cdk deploy` finds
         no change, verification (what a developer sees re-running deploy). Goal: <= 15 s.
  fresh: the cached assembly on a fresh emulator (bootstrap + create), as after `devenv down && up`.

    uv run python benchmarks/deploy_benchmark.py [--runs 5] [--output json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devenv.config import Settings
from devenv.runtime.ports import free_port
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import Supervisor
from devenv.services import postgres, redis
from devenv.targets.local import endpoint_for, require_emulator

ROOT = Path(__file__).resolve().parents[1]


def start_emulator(admin_url: str, redis_url: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    parts = urlsplit(redis_url)
    env = {
        **os.environ,
        "DEVENV_POSTGRES_ADMIN_URL": admin_url,
        "DEVENV_REDIS_ENDPOINT": f"{parts.hostname}:{parts.port}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "devenv.emulator", "--port", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            require_emulator(endpoint_for(port))
            return process, port
        except Exception:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the emulator did not start; see {log}") from None
            time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=15)


def deploy(state_dir: Path, port: int) -> float:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DEVENV_CDK_CACHE_DIR"},
        "DEVENV_STATE_DIR": str(state_dir),
        "DEVENV_EMULATOR_PORT": str(port),
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "devenv", "deploy", "--target", "local", "--output", "json", "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"devenv deploy failed:\n{done.stderr[-3000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="devenv-deploy-bench-"))
    root.chmod(0o755)
    state = StateDir(root / "infra")
    state.ensure()
    settings = Settings.model_validate({"state_dir": state.root})
    supervisor = Supervisor(state, facts={})
    timings: dict[str, list[float]] = {"cold": [], "warm": [], "fresh": []}
    try:
        supervisor.start_all(
            [postgres.spec(settings, state, free_port()), redis.spec(settings, state, free_port())]
        )
        admin_url = supervisor.services["postgres"].spec.url or ""
        redis_url = supervisor.services["redis"].spec.url or ""
        for run in range(args.runs):
            cache = root / f"state-{run}"
            process, port = start_emulator(admin_url, redis_url, root / "emulator.log")
            try:
                timings["cold"].append(deploy(cache, port))
                timings["warm"].append(deploy(cache, port))
            finally:
                stop(process)
            process, port = start_emulator(admin_url, redis_url, root / "emulator.log")
            try:
                timings["fresh"].append(deploy(cache, port))
            finally:
                stop(process)
            print(
                f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in timings.items()),
                file=sys.stderr,
            )
    finally:
        supervisor.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    result: dict[str, Any] = {
        name: {"median_s": round(statistics.median(values), 2), "runs_s": [round(v, 2) for v in values]}
        for name, values in timings.items()
    }
    result["warm_goal_s"] = 15.0
    result["warm_goal_met"] = result["warm"]["median_s"] <= 15.0
    if args.output == "json":
        print(json.dumps(result, indent=2))
    else:
        for name in ("cold", "warm", "fresh"):
            print(f"{name:>5}: median {result[name]['median_s']:.1f} s  runs {result[name]['runs_s']}")
        print(f"warm goal <= 15 s: {'met' if result['warm_goal_met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
