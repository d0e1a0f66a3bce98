"""How far the load generator scales with Locust workers: `devenv loadtest --workers N` against the mock
upstream directly (no proxy, no added latency), so the load generator is the bottleneck. Not a test.

One run: the mock upstream (instant answers) on a free port, then the same smoke-shaped load (direct mode,
`--api-key`) with 1 worker and with 2 workers, one after the other; prints each run's RPS, p50/p95, the
requests each worker sent, and the ratio of 2 workers to 1 (goal on 2 cores: >= 1.7x).

    uv run python benchmarks/loadgen_benchmark.py [--users 40] [--duration 15s] [--output json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from proxy_benchmark import wait_http

from devenv.config import INSTANT_MOCK_UPSTREAM, Settings
from devenv.runtime.ports import free_port
from devenv.services import llmproxy

WORKER_COUNTS = (1, 2)


def run_load(base: str, workers: int, users: int, duration: str, run_root: Path) -> dict[str, Any]:
    thresholds = run_root / "thresholds.yaml"
    thresholds.write_text("default:\n  total: {error_rate: 1.0}\n")  # figures only: nothing can breach
    result = subprocess.run(
        [
            sys.executable, "-m", "devenv", "loadtest",
            "--url", base, "--api-key", "sk-benchmark",
            "--profile", "smoke", "--users", str(users), "--duration", duration,
            "--workers", str(workers), "--thresholds", str(thresholds),
            "--report-dir", str(run_root / f"workers-{workers}"), "--output", "json",
        ],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if result.returncode not in (0, 1):
        sys.exit(f"devenv loadtest --workers {workers} exited {result.returncode}:\n{result.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(result.stdout)
    return {
        "workers": workers,
        "rps": summary["rps"],
        "requests": summary["requests"],
        "failures": summary["failures"],
        "p50_ms": summary["p50_ms"],
        "p95_ms": summary["p95_ms"],
        "per_worker_requests": [w["requests"] for w in summary["workers"] if "index" in w],
        "verdict": summary["verdict"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--duration", default="15s")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    args = parser.parse_args()
    settings = Settings.model_validate(INSTANT_MOCK_UPSTREAM)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="loadgen-bench-") as tmp:
        root = Path(tmp)
        with (root / "mock.log").open("ab") as log:
            mock = subprocess.Popen(
                llmproxy.mock_upstream_spec(settings, port).argv,
                stdout=log,
                stderr=log,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/mock/stats", mock, "mock upstream")
            runs = [run_load(base, n, args.users, args.duration, root) for n in WORKER_COUNTS]
        finally:
            mock.terminate()
            mock.wait(timeout=10)
    ratio = runs[1]["rps"] / runs[0]["rps"] if runs[0]["rps"] else 0.0
    if args.output == "json":
        print(json.dumps({"runs": runs, "ratio_2_to_1": round(ratio, 2)}, indent=2))
        return
    print(f"mock upstream direct, smoke shape, {args.users} users, {args.duration} per run")
    for run in runs:
        print(
            f"  {run['workers']} worker(s): {run['rps']:8.1f} RPS  p50 {run['p50_ms']:g} ms  p95 {run['p95_ms']:g} ms  "
            f"requests {run['requests']} (per worker {run['per_worker_requests']}), failures {run['failures']}"
        )
    print(f"  2 workers / 1 worker: {ratio:.2f}x (goal >= 1.7x)")


if __name__ == "__main__":
    main()
