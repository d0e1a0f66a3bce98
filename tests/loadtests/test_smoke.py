"""The smoke profile against a real proxy and mock upstream: the verdict, the counts, the key swap, the
cache, and the report folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import MANAGEMENT_TOKEN, ProxyTarget
from tests.loadtests.conftest import UPSTREAM_KEY, Devenv

REAL_TYPES = {"chat: cache miss", "chat: cache hit", "chat stream", "embeddings", "models"}


@pytest.mark.slow
def test_smoke_passes_against_the_local_stack(
    devenv: Devenv, local_target: ProxyTarget, tmp_path: Path
) -> None:
    before = local_target.mock_stats()
    result = devenv.run(
        "loadtest",
        "--url",
        local_target.proxy_url,
        "--management-token",
        MANAGEMENT_TOKEN,
        "--profile",
        "smoke",
        "--users",
        "4",
        "--duration",
        "6s",
        "--report-dir",
        str(tmp_path / "runs"),
        "--output",
        "json",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    summary = json.loads(result.stdout)  # stdout holds only the JSON
    assert summary["verdict"] == "pass"
    assert summary["breached"] == []
    types = summary["request_types"]
    assert set(types) >= REAL_TYPES
    assert types["chat stream: first token"]["metric_only"] is True
    # the totals count every real request once, and leave the first-token metric out
    real = [f for f in types.values() if not f["metric_only"]]
    assert summary["requests"] == sum(f["requests"] for f in real)
    assert summary["failures"] == sum(f["failures"] for f in real)  # (a few are allowed: the verdict decides)
    # a first token for every stream, but those that failed before one (e.g. cut by the run's stop)
    stream, first = types["chat stream"], types["chat stream: first token"]["requests"]
    assert stream["requests"] - stream["failures"] <= first <= stream["requests"]
    assert {"rps", "p50_ms", "p95_ms", "p99_ms"} <= set(summary)
    assert all(c["ok"] for c in summary["thresholds"]) and summary["thresholds"]
    # the cacheable chats were served from the proxy's cache after their first ask
    assert summary["cache"].get("chat: cache hit: hit", 0) > 0
    assert summary["cache"].get("chat: cache miss: miss", 0) > 0
    assert summary["cache"].get("chat: cache miss: hit", 0) == 0  # unique prompts never hit
    # the upstream saw the project's key, never the client's token (the proxy swapped it)
    after = local_target.mock_stats()
    keys = after["by_authorization"]
    new_upstream_calls = after["requests"] - before["requests"]
    assert (
        keys.get(f"Bearer {UPSTREAM_KEY}", 0) - before["by_authorization"].get(f"Bearer {UPSTREAM_KEY}", 0)
        > 0
    )
    during = {k for k, n in keys.items() if n > before["by_authorization"].get(k, 0)}  # (the mock is shared)
    assert all(not k.startswith("Bearer sk-") or k == f"Bearer {UPSTREAM_KEY}" for k in during)
    assert new_upstream_calls < summary["requests"]  # cache hits and management calls never reach it
    run_dir = Path(summary["run_dir"])
    # Locust's own aggregated row (its HTML, CSV and web UI) counts the same requests, first tokens left out
    with open(run_dir / "locust_stats.csv", newline="") as stats:
        aggregated = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    assert int(aggregated["Request Count"]) == summary["requests"]
    for name in (
        "locust.html",
        "summary.json",
        "timeline.json",
        "latency.png",
        "throughput.png",
        "report.html",
    ):
        assert (run_dir / name).stat().st_size > 0, name
    assert (run_dir / "latency.png").read_bytes().startswith(b"\x89PNG")
    page = (run_dir / "report.html").read_text()
    assert 'src="latency.png"' in page and 'src="throughput.png"' in page and "PASS" in page
