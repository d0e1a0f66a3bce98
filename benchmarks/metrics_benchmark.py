"""What metrics collection costs the proxy: two local stacks in the same run, one publishing CloudWatch
metrics (`metrics = true`, the default) and one not (`DEVENV_METRICS=false`), each driven by the same
load generator (wrk, POST /v1/chat/completions with a proxy token, no cache) through its ALB mirror, in
interleaved rounds (on, off, off, on, ...) so drift in the machine's load hits both alike. Not a test.

Reports, per configuration, the median over the rounds of: requests per second at a fixed concurrency
high enough to saturate the proxy, p99, errors, and the CPU microseconds per request of the proxy task,
the ALB mirror (Caddy, which writes the access log when metrics are on), the supervisor (the metrics
collector and publisher run there) and the emulator (which takes the datapoints); then the difference in
RPS. Goal: metrics on costs <= 3 % of the RPS.

    uv run python benchmarks/metrics_benchmark.py [--rounds 5] [--duration 10] [--concurrency 16] [--output json]
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
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from proxy_benchmark import WRK_SCRIPT, wrk

from devenv.config import INSTANT_MOCK_UPSTREAM, Settings, environment
from devenv.runtime.ports import free_port, is_free

MEASURED = ("proxy", "alb", "supervisor", "emulator")  # processes whose CPU per request is reported


@dataclass
class Stack:
    """One running local stack: its environment, ALB URL, proxy token and the processes measured."""

    name: str
    env: dict[str, str]
    state_dir: Path
    alb: str = ""
    token: str = ""
    processes: dict[str, psutil.Process] | None = None


@dataclass
class Round:
    stack: str
    rps: float
    p99_ms: float
    errors: int
    cpu_us_per_request: dict[str, float]


def devenv(stack: Stack, *args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "devenv", *args],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"`devenv {' '.join(args)}` ({stack.name}) failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def new_stack(name: str, metrics: bool, upstream_port: int) -> Stack:
    """A stack's settings: a throw-away state dir and free ports (so it never meets a developer's)."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"devenv-metrics-bench-{name}-"))
    state_dir.chmod(0o755)  # the non-root Postgres user must reach its data dir
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVENV_") or k == "DEVENV_CDK_CACHE_DIR"}
    env.update(
        {
            f"DEVENV_{field.upper()}": str(free_port())
            for field in Settings.model_fields
            if field.endswith("_port")
        }
    )
    env.update(
        {
            "DEVENV_STATE_DIR": str(state_dir),
            "DEVENV_MOCK_UPSTREAM_PORT": str(upstream_port),
            "DEVENV_AUTOSCALING": "false",  # one proxy task in both stacks, whatever the load
            "DEVENV_METRICS": "true" if metrics else "false",
            # the mock upstream answers at once: the figures are the proxy path's, not a model's latency
            **environment(INSTANT_MOCK_UPSTREAM),
        }
    )
    return Stack(name, env, state_dir)


def start(stack: Stack) -> None:
    devenv(stack, "up", "-d", "--quiet")
    stack.token = json.loads(devenv(stack, "token", "create", "--output", "json"))["token"]
    status = json.loads(devenv(stack, "status", "--output", "json"))
    stack.alb = f"http://127.0.0.1:{status['alb_url'].rsplit(':', 1)[1]}"
    pids = {svc["name"]: svc["pid"] for svc in status["services"] if svc["pid"]}
    proxies = [name for name in pids if name.startswith("proxy-")]
    if len(proxies) != 1:
        sys.exit(f"{stack.name}: expected one proxy task, found {proxies}")
    pids["proxy"] = pids[proxies[0]]
    pids["supervisor"] = status["supervisor"]["pid"]
    stack.processes = {name: psutil.Process(pids[name]) for name in MEASURED}


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def run_round(stack: Stack, script: Path, concurrency: int, duration: int) -> Round:
    assert stack.processes is not None
    before = {name: cpu_seconds(p) for name, p in stack.processes.items()}
    result = wrk(
        f"{stack.alb}/v1/chat/completions",
        script,
        concurrency,
        duration,
        {"BENCH_CACHE": "0", "BENCH_UNIQUE": "0", "BENCH_TOKEN": stack.token},
    )
    requests = max(1, int(result["requests"]))
    cpu = {
        name: round((cpu_seconds(p) - before[name]) * 1e6 / requests, 1)
        for name, p in stack.processes.items()
    }
    return Round(
        stack=stack.name,
        rps=round(result["requests"] / (result["duration_us"] / 1e6), 1),
        p99_ms=round(result["p99_us"] / 1000, 2),
        errors=int(result["errors"]) + int(result["non2xx"]),
        cpu_us_per_request=cpu,
    )


def summarize(rounds: list[Round]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in ("metrics-on", "metrics-off"):
        own = [r for r in rounds if r.stack == name]
        summary[name] = {
            "median_rps": statistics.median(r.rps for r in own),
            "median_p99_ms": statistics.median(r.p99_ms for r in own),
            "errors": sum(r.errors for r in own),
            "median_cpu_us_per_request": {
                process: statistics.median(r.cpu_us_per_request[process] for r in own) for process in MEASURED
            },
        }
    on, off = summary["metrics-on"]["median_rps"], summary["metrics-off"]["median_rps"]
    summary["rps_change_percent"] = round((on - off) / off * 100, 2)
    return summary


def print_report(report: dict[str, Any]) -> None:
    print(
        f"metrics collection on vs off (wrk c={report['concurrency']}, {report['duration_s']} s x "
        f"{report['rounds']} rounds each, interleaved; {report['cpu_count']} cores; load average at end "
        f"{report['load_average']})"
    )
    print(
        f"{'stack':12} {'rps':>8} {'p99 ms':>8} {'errors':>6}  "
        + " ".join(f"{p + ' us/req':>16}" for p in MEASURED)
    )
    for r in report["runs"]:
        cpu = " ".join(f"{r['cpu_us_per_request'][p]:>16.0f}" for p in MEASURED)
        print(f"{r['stack']:12} {r['rps']:>8.0f} {r['p99_ms']:>8.2f} {r['errors']:>6}  {cpu}")
    print()
    for name in ("metrics-on", "metrics-off"):
        s = report["summary"][name]
        cpu = ", ".join(f"{p} {v:.0f}" for p, v in s["median_cpu_us_per_request"].items())
        print(
            f"[{name}] median {s['median_rps']:.0f} RPS, p99 {s['median_p99_ms']} ms, {s['errors']} errors; "
            f"CPU us/request: {cpu}"
        )
    print(
        f"\nRPS with metrics on vs off: {report['summary']['rps_change_percent']:+.2f} % (goal: no worse than -3 %)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="wrk runs per stack [5]")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run [10]")
    parser.add_argument("--concurrency", type=int, default=16, help="wrk connections [16]")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")

    # the local props' upstream (8081) for one stack; another port is another template (one more synth)
    stacks = [
        new_stack("metrics-on", True, 8081 if is_free(8081) else free_port()),
        new_stack("metrics-off", False, free_port()),
    ]
    script = stacks[0].state_dir / "post.lua"
    script.write_text(textwrap.dedent(WRK_SCRIPT))
    rounds: list[Round] = []
    try:
        for stack in stacks:
            start(stack)
            run_round(stack, script, args.concurrency, 2)  # warm-up: connection pools, token cache
        for index in range(args.rounds):
            order = stacks if index % 2 == 0 else stacks[::-1]
            rounds += [run_round(stack, script, args.concurrency, args.duration) for stack in order]
    finally:
        for stack in stacks:
            subprocess.run(
                [sys.executable, "-m", "devenv", "down", "--quiet"],
                env=stack.env,
                capture_output=True,
                timeout=180,
                check=False,
            )
            shutil.rmtree(stack.state_dir, ignore_errors=True)

    report = {
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "runs": [asdict(r) for r in rounds],
        "summary": summarize(rounds),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if args.output == "json":
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
