"""`devenv loadtest` end to end: Locust in a subprocess against a real proxy and mock upstream."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import MANAGEMENT_TOKEN, ProxyTarget
from tests.loadtests.conftest import Devenv
from tests.ports import free_port


@pytest.mark.slow
def test_an_impossible_threshold_exits_1_naming_it(
    devenv: Devenv, local_target: ProxyTarget, tmp_path: Path
) -> None:
    result = devenv.run(
        "loadtest",
        "--url",
        local_target.proxy_url,
        "--management-token",
        MANAGEMENT_TOKEN,
        "--duration",
        "3s",
        "--users",
        "2",
        "--report-dir",
        str(tmp_path),
        "--threshold",
        "total.min_rps=1000000",
        "--threshold",
        "chat: cache miss.p99_ms=100000",
    )
    assert result.returncode == 1, result.stderr + result.stdout
    assert re.search(r"breached:.*total rps .*below the limit; total rps >= 1e\+06", result.stdout)
    assert "chat: cache miss p99_ms" not in result.stdout.split("verdict:")[0].split("breached:", 1)[1]
    assert "verdict: FAIL" in result.stdout


def test_an_unreachable_target_exits_2_with_a_clear_message(devenv: Devenv, tmp_path: Path) -> None:
    port = free_port()
    result = devenv.run(
        "loadtest",
        "--url",
        f"http://127.0.0.1:{port}",
        "--management-token",
        "x",
        "--report-dir",
        str(tmp_path),
    )
    assert result.returncode == 2
    assert f"cannot reach the target http://127.0.0.1:{port}/health" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # no half-written run folder


def test_a_refused_token_and_no_target_exit_2(
    devenv: Devenv, local_target: ProxyTarget, tmp_path: Path
) -> None:
    refused = devenv.run(
        "loadtest", "--url", local_target.proxy_url, "--management-token", "wrong", "-o", "json"
    )
    assert refused.returncode == 2
    assert "refused the management token (401)" in refused.stderr
    assert json.loads(refused.stdout)["verdict"] == "error"
    nothing = devenv.run("loadtest", "--target", "local")
    assert nothing.returncode == 2  # no `devenv up` in this state dir, and no --url
    assert "devenv up" in nothing.stderr


def test_bad_flags_are_usage_errors(devenv: Devenv) -> None:
    # (the duration and override grammars are covered in test_verdicts; here: they reach the user as exit 2)
    for args, message in [
        (["--profile", "tsunami"], "unknown profile 'tsunami'"),
        (["--duration", "soon", "--threshold", "total.p95=1"], "cannot read the duration 'soon'"),
        (["--on", "loadgen", "--workers", "2", "--web"], "--on loadgen does not take --web (the master's"),
        (["--master-url", "http://127.0.0.1:1"], "--master-url is the load generator stack's master"),
    ]:
        result = devenv.run("loadtest", "--url", "http://127.0.0.1:1", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)


def _json(url: str, data: dict[str, Any] | None = None) -> Any:
    body = None if data is None else urllib.parse.urlencode(data).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def web_ui(devenv: Devenv, *args: str) -> Iterator[subprocess.Popen[str]]:
    """`devenv loadtest --web ARGS` in a session of its own, killed with its Locust if the test leaves it
    running."""
    process = subprocess.Popen(
        devenv.argv("loadtest", "--web", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=devenv.env,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.slow
def test_web_serves_the_ui_and_its_stats(
    devenv: Devenv, local_target: ProxyTarget, tmp_path: Path, workers: int
) -> None:
    generous = tmp_path / "generous.yaml"
    generous.write_text("default:\n  total: {p99_ms: 60000, error_rate: 0.5}\n")
    with web_ui(
        devenv,
        "--workers", str(workers), "--url", local_target.proxy_url, "--management-token", MANAGEMENT_TOKEN,
        "--thresholds", str(generous), "--report-dir", str(tmp_path / "runs"),
    ) as process:  # fmt: skip
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"Locust web UI: (http://127\.0\.0\.1:\d+)", line)
        assert match, line + (process.stderr.read() if process.stderr else "")
        ui = match.group(1)
        stats = _json(ui + "/stats/requests")
        assert stats["state"] == "ready" and "stats" in stats
        with urllib.request.urlopen(ui + "/", timeout=10) as page:  # its templateArgs hold the UI's options
            source = page.read().decode()
        assert "templateArgs" in source and MANAGEMENT_TOKEN not in source
        started = _json(ui + "/swarm", {"user_count": 2, "spawn_rate": 2, "host": local_target.proxy_url})
        assert started["success"] is True
        deadline = time.monotonic() + 30
        total = 0
        while time.monotonic() < deadline and total == 0:  # /stats/requests is refreshed every ~2 s
            time.sleep(1)
            stats = _json(ui + "/stats/requests")
            total = sum(s["num_requests"] for s in stats["stats"] if s["name"] == "chat: cache miss")
        assert total > 0, stats
        urllib.request.urlopen(urllib.request.Request(ui + "/stop", data=b""), timeout=10).read()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    run_dirs = list((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 1
    summary = json.loads((run_dirs[0] / "summary.json").read_text())
    assert summary["verdict"] == "pass" and summary["requests"] > 0
    report = (run_dirs[0] / "report.html").read_text()
    assert "profile none (web UI)" in report and "profile None" not in report
    assert (run_dirs[0] / "locust.html").stat().st_size > 0  # Locust's own report, linked from ours
    assert 'href="locust.html"' in report
    rows = [row for row in summary["workers"] if "index" in row]
    assert len(rows) == workers
    if workers:  # every worker took part, and the master's totals are the sum of what they reported
        assert all(row["requests"] > 0 and not row["lost"] for row in rows), rows
        assert sum(row["requests"] for row in rows) == summary["requests"]


@pytest.mark.slow
def test_locust_ending_without_its_summary_is_an_error_showing_its_log(
    devenv: Devenv, local_target: ProxyTarget, tmp_path: Path
) -> None:
    with web_ui(
        devenv,
        "--workers", "0", "--url", local_target.proxy_url, "--management-token", MANAGEMENT_TOKEN,
        "--report-dir", str(tmp_path / "runs"),
    ) as process:  # fmt: skip
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "Locust web UI: http://127.0.0.1:" in line, line
        [locust] = [child for child in psutil.Process(process.pid).children() if "locust" in child.cmdline()]
        locust.kill()  # as the OOM killer would: no summary written
        _, err = process.communicate(timeout=60)
    assert process.returncode == 2, err
    assert "Locust was killed" in err and "without writing its summary" in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("profile", "stages"),
    [
        ("step", [("step 1", 1), ("step 2", 2), ("step 3", 3), ("step 4", 4)]),
        ("spike", [("baseline", 1), ("spike", 5), ("recovery", 1)]),
    ],
)
@pytest.mark.slow
def test_step_and_spike_report_each_stage(
    devenv: Devenv, local_target: ProxyTarget, tmp_path: Path, profile: str, stages: list[tuple[str, int]]
) -> None:
    result = devenv.run(
        "loadtest",
        "--url",
        local_target.proxy_url,
        "--management-token",
        MANAGEMENT_TOKEN,
        "--profile",
        profile,
        "--workers",
        "0",
        "--users",
        str(max(users for _, users in stages)),
        "--duration",
        "6s",
        "--threshold",
        "total.p99_ms=60000",
        "--threshold",
        "total.error_rate=0.5",
        "--report-dir",
        str(tmp_path),
        "-o",
        "json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [(s["label"], s["users"]) for s in summary["stages"]] == stages
    assert all(s["rps"] > 0 for s in summary["stages"]), summary["stages"]
    page = Path(summary["report"]).read_text()
    assert "<h2>Stages</h2>" in page and f"<td>{stages[-1][0]}</td>" in page


@pytest.mark.slow
def test_ramp_stops_at_the_first_breach(devenv: Devenv, local_target: ProxyTarget, tmp_path: Path) -> None:
    result = devenv.run(
        "loadtest",
        "--url",
        local_target.proxy_url,
        "--management-token",
        MANAGEMENT_TOKEN,
        "--profile",
        "ramp",
        "--workers",
        "0",  # each 2 s step is judged on live stats, which workers report to the master with a delay
        "--users",
        "6",
        "--duration",
        "6s",
        "--ramp-step",
        "2s",
        "--threshold",
        "models.p50_ms=0",  # a round trip through the proxy takes at least a millisecond
        "--report-dir",
        str(tmp_path),
        "-o",
        "json",
    )
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    ramp = summary["ramp"]
    assert "<td>ramp step 1</td>" in Path(summary["report"]).read_text()
    assert [s["label"] for s in ramp["steps"]] == ["ramp step 1"]  # 3 steps planned, stopped after the first
    assert ramp["stopped_by"]["users"] == 2
    assert ramp["stopped_by"]["breached"][0].startswith("models p50_ms")
    assert (ramp["max_rps"], ramp["max_users"]) == (0.0, 0)
