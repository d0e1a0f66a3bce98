"""The dashboard page `devenv up` serves, against the session's shared stack with real traffic through the
ALB mirror (127.0.0.1 only): `up` and `status` name its URL; the data endpoint draws the deployed
dashboard's widgets from CloudWatch, the 5xx-rate metric math equals its expression applied to its inputs;
each task's log tail reads as `devenv logs` reads it, and on AWS's code path from CloudWatch Logs (here the
emulator's); a load test's report links to the page at its window; the server listens on 127.0.0.1 alone;
and the page renders in a real headless browser.

time_scale 30: a CloudWatch minute lasts 2 s, so the minute-period widgets fill within seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from devenv.dashboard.data import Reader
from devenv.emulator import metric_math
from devenv.runtime.state import StateDir
from devenv.targets import aws_api
from tests.local_stack import Stack
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

TITLES = ["Requests", "Latency (target response time)", "Proxy tasks", "Dispatcher", "Aurora", "Redis"]
RATE = "IF(requests > 0, 100 * (FILL(elb, 0) + FILL(target, 0)) / requests, 0)"


@dataclass
class Page:
    url: str  # the base URL `up` serves, ending in /
    pid: int

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"{self.url.rstrip('/')}{path}", timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def page(shared_stack: Stack) -> Page:
    [served] = [s for s in shared_stack.status()["services"] if s["name"] == "dashboard"]
    assert served["state"] == "running" and served["pid"], served
    return Page(served["url"], served["pid"])


@pytest.fixture(scope="module")
def traffic(shared_stack: Stack) -> dict[str, list[int]]:
    """40 completions and 5 forced upstream failures through the ALB mirror."""
    shared_stack.await_steady()
    ok = [shared_stack.chat(f"dashboard {i}")[0] for i in range(40)]
    failing = [shared_stack.chat(f"failing {i}", headers={"X-Mock-Error": "500"})[0] for i in range(5)]
    assert set(ok) == {200}
    assert all(status >= 500 for status in failing)
    return {"ok": ok, "failing": failing}


def widget(document: dict[str, Any], title: str) -> dict[str, Any]:
    return next(w for w in document["dashboard"]["widgets"] if w["title"] == title)


def points_of(found: dict[str, Any], title: str, metric_name: str) -> list[list[float]]:
    w = widget(found, title)
    ids = [s["id"] for s in w["series"] if s["metric"] and s["metric"]["MetricName"] == metric_name]
    return [p for i in ids for p in w["points"][i]]


def proxy_task(document: dict[str, Any]) -> tuple[str, str, str]:
    """(cluster, service, task id) of the proxy's running task, as the page lists it."""
    [proxy] = [s for s in document["services"] if s["name"] == "proxy"]
    [task] = [t for t in proxy["tasks"] if t["last_status"] == "RUNNING"]
    return proxy["cluster"], proxy["name"], task["id"]


def test_up_and_status_name_the_served_page(stack: Stack, page: Page) -> None:
    port = int(stack.env["DEVENV_DASHBOARD_PORT"])
    assert page.url == f"http://127.0.0.1:{port}/"
    assert f"The stack's dashboard, live: {page.url}" in stack.up_output, stack.up_output
    assert page.url in stack.devenv("status").stdout
    with urllib.request.urlopen(page.url, timeout=10) as response:
        assert b'<script src="/static/dashboard.js">' in response.read()
    # `devenv dashboard` on the local target opens the page `up` serves (no second server)
    opened = stack.devenv("dashboard", "--no-open", "--start", "1767225600", "--end", "1767229200")
    assert opened.returncode == 0, opened.stderr
    assert f"served by `devenv up`: {page.url}?start=1767225600&end=1767229200" in opened.stdout


def test_the_data_endpoint_draws_the_deployed_dashboard_with_requests_and_latency(
    stack: Stack, page: Page, traffic: dict[str, list[int]]
) -> None:
    def filled() -> dict[str, Any] | None:
        status, document = page.get("/api/data?range=1h")
        assert status == 200, document
        latency = points_of(document, "Latency (target response time)", "TargetResponseTime")
        requests = points_of(document, "Requests", "RequestCount")
        [proxy] = [s for s in document["services"] if s["name"] == "proxy"]
        healthy = [t["state"] for t in proxy["targets"]] == ["healthy"]
        return document if healthy and latency and sum(v for _, v in requests) >= 45 else None

    document = wait_for(filled, timeout_s=60, interval_s=1)
    assert document["errors"] == [] and document["target"] == "local"
    assert [w["title"] for w in document["dashboard"]["widgets"]] == TITLES
    assert all(w["error"] is None for w in document["dashboard"]["widgets"])
    latency = widget(document, "Latency (target response time)")
    assert [s["stat"] for s in latency["series"]] == ["p50", "p99"]
    assert all(latency["points"][s["id"]] for s in latency["series"])
    assert {(w["x"], w["y"], w["width"]) for w in document["dashboard"]["widgets"]} >= {
        (0, 0, 12),
        (12, 0, 12),
    }
    [proxy] = [s for s in document["services"] if s["name"] == "proxy"]
    assert proxy["running"] == 1 and proxy["tasks"][0]["last_status"] == "RUNNING"
    assert any(a["name"].startswith("LlmProxyStack-") for a in document["alarms"])
    assert document["outputs"]


def test_the_5xx_rate_is_its_expression_applied_to_its_hidden_inputs(
    stack: Stack, page: Page, traffic: dict[str, list[int]]
) -> None:
    def with_errors() -> dict[str, Any] | None:
        document = page.get("/api/data?range=1h")[1]
        return document if points_of(document, "Requests", "HTTPCode_Target_5XX_Count") else None

    requests = widget(wait_for(with_errors, timeout_s=60, interval_s=1), "Requests")
    by_id = {s["id"]: s for s in requests["series"]}
    [rate] = [s for s in requests["series"] if s["expression"]]
    assert rate["expression"] == RATE and rate["label"] == "5xx rate (%)" and rate["axis"] == "right"
    # the left axis draws the requests; the 5xx counts are inputs only, hidden as the CDK wrote them
    assert [by_id[i]["visible"] for i in ("requests", "elb", "target")] == [True, False, False]
    inputs = {i: dict(map(tuple, requests["points"][i])) for i in ("requests", "elb", "target")}
    tree = metric_math.parse(RATE)
    moments = sorted(set().union(*inputs.values()))
    expected = [[at, metric_math.evaluate(tree, {i: s.get(at) for i, s in inputs.items()})] for at in moments]
    assert requests["points"][rate["id"]] == [p for p in expected if p[1] is not None]
    assert any(value > 0 for _, value in requests["points"][rate["id"]])  # the forced failures show


def test_a_tasks_log_tail_reads_as_devenv_logs_reads_it(stack: Stack, page: Page) -> None:
    cluster, service, task = proxy_task(page.get("/api/data?range=1h")[1])
    status, log = page.get(f"/api/logs?cluster={cluster}&service={service}&task={task}")
    assert status == 200, log
    process = f"{service}-{task[:8]}"
    path = Path(stack.env["DEVENV_STATE_DIR"]) / "logs" / f"{process}.log"
    assert str(path) in log["source"] and "no CloudWatch Logs" in log["source"]
    assert log["lines"]
    ran = stack.devenv("logs", process, "--tail", "400")
    printed = [line.removeprefix(f"{process} | ") for line in ran.stdout.splitlines()]  # a task's prefix
    size = len(log["lines"])
    # the same lines, in order (the log may have grown between the two reads)
    assert any(printed[i : i + size] == log["lines"] for i in range(len(printed) - size + 1)), (
        ran.returncode,
        ran.stderr[-2000:],
        log["lines"][-3:],
        printed[-3:],
    )
    assert page.get(f"/api/logs?cluster={cluster}&service={service}&task=00000000deadbeef")[0] == 404
    status, refused = page.get(f"/api/logs?cluster={cluster}&service=../../etc&task={task}")
    assert status == 400 and "service name" in refused["error"]


def test_on_awss_code_path_a_tasks_log_is_its_awslogs_stream(stack: Stack, page: Page) -> None:
    """The Reader as it runs against AWS (no local logs dir), over the emulator's CloudWatch Logs: the
    stream the task definition's awslogs options name holds what the test writes there."""
    cluster, _, task = proxy_task(page.get("/api/data?range=1h")[1])
    api = aws_api.connect("local", StateDir(Path(stack.env["DEVENV_STATE_DIR"])), None)
    reader = Reader(api, logs_dir=None)
    ecs, logs = stack.client("ecs"), stack.client("logs")
    [described] = ecs.describe_tasks(cluster=cluster, tasks=[task])["tasks"]
    definition = ecs.describe_task_definition(taskDefinition=described["taskDefinitionArn"])["taskDefinition"]
    container = definition["containerDefinitions"][0]
    options = container["logConfiguration"]["options"]
    group = options["awslogs-group"]
    stream = (
        f"{options['awslogs-stream-prefix']}/{container['name']}/{described['taskArn'].rsplit('/', 1)[-1]}"
    )
    now_ms = int(time.time() * 1000)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    try:
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now_ms + i, "message": f"line {i}"} for i in range(3)],
        )
        found = reader.task_log(cluster, "proxy", task, lines=2)
    finally:
        logs.delete_log_stream(logGroupName=group, logStreamName=stream)  # the shared stack as it was
    assert found["source"].startswith("CloudWatch Logs ") and f"{group} {stream}" in found["source"]
    assert found["lines"] == [f"{container['name']} | line 1", f"{container['name']} | line 2"]
    missing = reader.task_log(cluster, "proxy", task)  # the stream is gone again: said, not an error
    assert missing["lines"] == [] and "not created yet" in missing["source"]


def test_a_load_tests_report_links_to_the_page_at_its_window(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    ran = stack.devenv(
        "loadtest", "--target", "local", "--profile", "smoke", "--users", "2", "--duration", "4s",
        "--report-dir", str(tmp_path), timeout=180,
    )  # fmt: skip
    assert ran.returncode in (0, 1), ran.stdout + ran.stderr  # the verdict does not matter here
    match = re.search(r"dashboard at this run's window: (http://\S+\?start=(\d+)&end=(\d+))", ran.stdout)
    assert match, ran.stdout
    link, start, end = match[1], int(match[2]), int(match[3])
    assert link.startswith(page.url) and start % 60 == 0 and end % 60 == 0 and start < end
    [run_dir] = tmp_path.iterdir()
    assert f'<a href="{link.replace("&", "&amp;")}">' in (run_dir / "report.html").read_text()
    status, document = page.get(f"/api/data?start={start}&end={end}")
    assert status == 200 and (document["start"], document["end"]) == (start, end)
    counted = points_of(document, "Requests", "RequestCount")
    assert counted and all(start <= at < end for at, _ in counted)


def test_the_server_listens_on_127_0_0_1_only(page: Page) -> None:
    port = int(page.url.rstrip("/").rsplit(":", 1)[1])
    listening = [
        c.laddr
        for c in psutil.Process(page.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening and all(address.ip == "127.0.0.1" and address.port == port for address in listening)
    others = [
        a.address
        for addresses in psutil.net_if_addrs().values()
        for a in addresses
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]
    for address in others:
        with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
            pass


def headless(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Debian's chromium, headless, as root (--no-sandbox), with a throw-away profile."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
                "--virtual-time-budget=20000", *args,
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[str]:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        missing = "no chromium on PATH (scripts/setup.sh installs it: apt-get install -y chromium)"
        if os.environ.get("CI"):  # CI proves the page in a browser: a missing one fails, never skips
            pytest.fail(missing)
        pytest.skip(missing)
    yield found


def test_the_page_renders_in_a_headless_browser(
    page: Page, traffic: dict[str, list[int]], browser: str
) -> None:
    rendered = headless(browser, "--dump-dom", page.url)
    dom = rendered.stdout
    assert 'data-loaded="true"' in dom, rendered.stderr[-2000:]
    for title in TITLES:
        assert f"<h3>{title}</h3>" in dom
    assert dom.count('class="uplot') >= len(TITLES) and dom.count("<canvas") >= len(TITLES)
    assert "proxy: 1 running / 1 desired" in dom
    assert dom.count('class="task-log"') >= 2  # each task's log one click away (proxy and dispatcher)
    assert 'data-query="range=1h"' in dom


def test_a_link_with_a_window_opens_the_page_at_it(page: Page, browser: str) -> None:
    end = int(time.time())
    start = end - 600
    dom = headless(browser, "--dump-dom", f"{page.url}?start={start}&end={end}").stdout
    assert f'data-query="start={start}&amp;end={end}"' in dom, dom[-2000:]
    assert 'data-loaded="true"' in dom
