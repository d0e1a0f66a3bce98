"""The proxy against the mock upstream directly, same load generator (wrk), one run. Not a test.

Starts Postgres and Redis (devenv's supervisor, free ports), the mock upstream (no added latency) and
one proxy process with every feature on: token check and swap, cache lookup (and store), event publish.
Two request shapes, each POST /v1/chat/completions:
  bypass:  a plain completion (the cache is skipped, as for most LLM traffic)
  lookup:  `Cache-Control: public, max-age=60` with a unique body per request, so every request
           looks the cache up, misses, goes upstream and stores the answer
Reports, per shape: p50/p99 at concurrency 1 (direct vs proxy, and the difference), the highest RPS at a
swept concurrency whose p99 stays under 50 ms with zero errors, the proxy's CPU microseconds per request
(from /proc, at that concurrency), and its RSS. Goals (2 cores): added <= 1 ms p50 and <= 2 ms p99 at
concurrency 1; >= 2,500 RPS; <= 500 us CPU per request.

    uv run python benchmarks/proxy_benchmark.py [--duration 5] [--output json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from devenv.config import INSTANT_MOCK_UPSTREAM, Settings
from devenv.runtime.ports import free_port
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import Supervisor
from devenv.services import llmproxy, postgres, redis
from devenv.targets.management import ManagementClient

MANAGEMENT_TOKEN = "benchmark-management-token"
CONCURRENCY_SWEEP = (1, 4, 8, 16, 32, 64)
P99_LIMIT_MS = 50.0

WRK_SCRIPT = """
local counter = 0
math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16))
local unique = os.getenv("BENCH_UNIQUE") == "1"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if os.getenv("BENCH_CACHE") == "1" then wrk.headers["Cache-Control"] = "public, max-age=60" end
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
local template = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello %s"}]}'
wrk.body = string.format(template, "world")
request = function()
  if unique then
    counter = counter + 1
    return wrk.format(nil, nil, nil, string.format(template, tostring(counter) .. "-" .. tostring(math.random(1e9))))
  end
  return wrk.format()
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "JSON{\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d,\\"errors\\":%d,\\"non2xx\\":%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass
class Run:
    target: str
    shape: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float | None = None


def wrk(url: str, script: Path, concurrency: int, duration: int, env: dict[str, str]) -> dict[str, Any]:
    threads = 1 if concurrency < 4 else 2
    argv = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{duration}s", "--latency", "-s", str(script), url]
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env}, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("JSON{"):
            result: dict[str, Any] = json.loads(line[4:])
            return result
    sys.exit(f"wrk failed:\n{done.stdout}\n{done.stderr}")


def wait_http(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited during start-up (exit {process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not answer {url} within 60 s")


def measure(
    target: str,
    shape: str,
    url: str,
    script: Path,
    concurrency: int,
    duration: int,
    env: dict[str, str],
    process: psutil.Process | None,
) -> Run:
    cpu_before = process.cpu_times() if process else None
    result = wrk(url, script, concurrency, duration, env)
    cpu_us = None
    if process is not None and cpu_before is not None and result["requests"]:
        after = process.cpu_times()
        spent = (after.user - cpu_before.user) + (after.system - cpu_before.system)
        cpu_us = round(spent * 1e6 / result["requests"], 1)
    return Run(
        target=target,
        shape=shape,
        concurrency=concurrency,
        rps=round(result["requests"] / (result["duration_us"] / 1e6), 1),
        p50_ms=round(result["p50_us"] / 1000, 3),
        p99_ms=round(result["p99_us"] / 1000, 3),
        errors=result["errors"] + result["non2xx"],
        cpu_us_per_request=cpu_us,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run [5]")
    parser.add_argument("--output", choices=("text", "json"), default="text")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")

    root = Path(tempfile.mkdtemp(prefix="llmproxy-bench-"))
    root.chmod(0o755)
    state = StateDir(root)
    state.ensure()
    supervisor = Supervisor(state, facts={})
    children: list[subprocess.Popen[bytes]] = []
    log = (root / "processes.log").open("ab")
    try:
        settings = Settings.model_validate({"state_dir": root, **INSTANT_MOCK_UPSTREAM})
        supervisor.start_all(
            [postgres.spec(settings, state, free_port()), redis.spec(settings, state, free_port())]
        )
        dsn = supervisor.services["postgres"].spec.url
        redis_url = supervisor.services["redis"].spec.url
        assert dsn and redis_url

        upstream_port, proxy_port = free_port(), free_port()
        mock = subprocess.Popen(
            llmproxy.mock_upstream_spec(settings, upstream_port).argv,
            stdout=log,
            stderr=log,
        )
        children.append(mock)
        env = {
            **os.environ,
            "MANAGEMENT_TOKEN": MANAGEMENT_TOKEN,
            "DATABASE_URL": dsn,
            "REDIS_CACHE_URL": redis_url,
            "REDIS_EVENT_URL": redis_url,
            "ENCRYPTION_KEY": "benchmark-encryption-key-0123456789",
            "OPENAI_API_URL": f"http://127.0.0.1:{upstream_port}/v1",
            "LISTEN_ADDR": f"127.0.0.1:{proxy_port}",
            "LOG_LEVEL": "warning",
        }
        proxy = subprocess.Popen([sys.executable, "-m", "llmproxy", "proxy"], env=env, stdout=log, stderr=log)
        children.append(proxy)
        direct_base, proxy_base = f"http://127.0.0.1:{upstream_port}", f"http://127.0.0.1:{proxy_port}"
        wait_http(direct_base + "/mock/stats", mock, "mock upstream")
        wait_http(proxy_base + "/live", proxy, "proxy")
        management = ManagementClient(proxy_base, MANAGEMENT_TOKEN)
        project = management.create_project("bench", "sk-bench-upstream")
        token = management.create_token(project["id"], duration_minutes=600)

        script = root / "post.lua"
        script.write_text(textwrap.dedent(WRK_SCRIPT))
        proxy_process = psutil.Process(proxy.pid)
        shapes = {
            "bypass": {"BENCH_CACHE": "0", "BENCH_UNIQUE": "0"},
            "lookup": {"BENCH_CACHE": "1", "BENCH_UNIQUE": "1"},
        }
        runs: list[Run] = []
        for shape, shape_env in shapes.items():
            direct_env = {**shape_env, "BENCH_TOKEN": ""}
            proxy_env = {**shape_env, "BENCH_TOKEN": token["token"]}
            # Warm up both paths (connection pools, token cache).
            wrk(direct_base + "/v1/chat/completions", script, 4, 1, direct_env)
            wrk(proxy_base + "/v1/chat/completions", script, 4, 1, proxy_env)
            for concurrency in CONCURRENCY_SWEEP:
                runs.append(
                    measure(
                        "direct",
                        shape,
                        direct_base + "/v1/chat/completions",
                        script,
                        concurrency,
                        args.duration,
                        direct_env,
                        None,
                    )
                )
                runs.append(
                    measure(
                        "proxy",
                        shape,
                        proxy_base + "/v1/chat/completions",
                        script,
                        concurrency,
                        args.duration,
                        proxy_env,
                        proxy_process,
                    )
                )
        counters = management.call("GET", "/metrics")
        rss_mib = round(proxy_process.memory_info().rss / 2**20, 1)
    finally:
        for child in reversed(children):
            child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        supervisor.stop_all()
        log.close()
        shutil.rmtree(root, ignore_errors=True)

    summary = summarize(runs)
    report = {
        "runs": [asdict(r) for r in runs],
        "summary": summary,
        "proxy_rss_mib": rss_mib,
        "events_published": counters["events_published"],
        "events_dropped": counters["events_dropped"],
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    if args.output == "json":
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def summarize(runs: list[Run]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for shape in sorted({r.shape for r in runs}):
        direct1, proxy1 = (
            next(r for r in runs if (r.target, r.shape, r.concurrency) == (target, shape, 1))
            for target in ("direct", "proxy")
        )
        within = [
            r
            for r in runs
            if r.shape == shape and r.target == "proxy" and r.errors == 0 and r.p99_ms < P99_LIMIT_MS
        ]
        best = max(within, key=lambda r: r.rps) if within else None
        direct_within = [
            r
            for r in runs
            if r.shape == shape and r.target == "direct" and r.errors == 0 and r.p99_ms < P99_LIMIT_MS
        ]
        summary[shape] = {
            "added_p50_ms_c1": round(proxy1.p50_ms - direct1.p50_ms, 3),
            "added_p99_ms_c1": round(proxy1.p99_ms - direct1.p99_ms, 3),
            "proxy_max_rps_p99_under_50ms": best.rps if best else None,
            "at_concurrency": best.concurrency if best else None,
            "cpu_us_per_request": best.cpu_us_per_request if best else None,
            "direct_max_rps_p99_under_50ms": max((r.rps for r in direct_within), default=None),
        }
    return summary


def print_report(report: dict[str, Any]) -> None:
    print(f"proxy benchmark (wrk; {report['cpu_count']} cores; load average at end {report['load_average']})")
    print(
        f"{'target':7} {'shape':7} {'conc':>4} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'cpu us/req':>10}"
    )
    for r in report["runs"]:
        cpu = "" if r["cpu_us_per_request"] is None else f"{r['cpu_us_per_request']:.0f}"
        print(
            f"{r['target']:7} {r['shape']:7} {r['concurrency']:>4} {r['rps']:>9.0f} {r['p50_ms']:>8.3f} "
            f"{r['p99_ms']:>8.3f} {r['errors']:>6} {cpu:>10}"
        )
    for shape, s in report["summary"].items():
        print(
            f"\n[{shape}] added at concurrency 1: p50 +{s['added_p50_ms_c1']} ms, p99 +{s['added_p99_ms_c1']} ms"
        )
        print(
            f"[{shape}] proxy max RPS with p99 < 50 ms and 0 errors: {s['proxy_max_rps_p99_under_50ms']} "
            f"(c={s['at_concurrency']}), CPU {s['cpu_us_per_request']} us/request; "
            f"direct mock: {s['direct_max_rps_p99_under_50ms']}"
        )
    print(
        f"\nproxy RSS after the runs: {report['proxy_rss_mib']} MiB; events published "
        f"{report['events_published']}, dropped {report['events_dropped']}"
    )


if __name__ == "__main__":
    sys.exit(main())
