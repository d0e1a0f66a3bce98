"""`devenv dashboard` against a real `devenv up` with real traffic through the ALB mirror (127.0.0.1 only):
the data endpoint draws the deployed dashboard's widgets from CloudWatch, the 5xx-rate metric math
equals its expression applied to its inputs, the server listens on 127.0.0.1 alone, and the page renders
in a real headless browser.

time_scale 30: a CloudWatch minute lasts 2 s, so the minute-period widgets fill within seconds.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from devenv.emulator import metric_math
from devenv.runtime.ports import free_port
from tests.local_stack import Stack, running_stack
from tests.waiting import wait_for

TITLES = ["Requests", "Latency (target response time)", "Proxy tasks", "Dispatcher", "Aurora", "Redis"]
RATE = "IF(requests > 0, 100 * (FILL(elb, 0) + FILL(target, 0)) / requests, 0)"


@dataclass
class Dashboard:
    url: str
    process: subprocess.Popen[str]

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack({"DEVENV_TIME_SCALE": "30"}) as running:
        yield running


@pytest.fixture(scope="module")
def dashboard(stack: Stack) -> Iterator[Dashboard]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devenv", "dashboard", "--no-open", "--port", str(port)],
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, process.communicate()[0]
        try:
            with urllib.request.urlopen(f"{url}/", timeout=2):
                return True
        except OSError:
            return False

    wait_for(up, timeout_s=60)
    yield Dashboard(url, process)
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> dict[str, list[int]]:
    """40 completions and 5 forced upstream failures through the ALB mirror."""
    ok = [stack.chat(f"dashboard {i}")[0] for i in range(40)]
    failing = [stack.chat(f"failing {i}", headers={"X-Mock-Error": "500"})[0] for i in range(5)]
    assert set(ok) == {200}
    assert all(status >= 500 for status in failing)
    return {"ok": ok, "failing": failing}


def widget(document: dict[str, Any], title: str) -> dict[str, Any]:
    return next(w for w in document["dashboard"]["widgets"] if w["title"] == title)


def points_of(found: dict[str, Any], title: str, metric_name: str) -> list[list[float]]:
    w = widget(found, title)
    ids = [s["id"] for s in w["series"] if s["metric"] and s["metric"]["MetricName"] == metric_name]
    return [p for i in ids for p in w["points"][i]]


def test_the_data_endpoint_draws_the_deployed_dashboard_with_requests_and_latency(
    dashboard: Dashboard, traffic: dict[str, list[int]]
) -> None:
    def filled() -> dict[str, Any] | None:
        status, document = dashboard.get("/api/data?range=1h")
        assert status == 200, document
        latency = points_of(document, "Latency (target response time)", "TargetResponseTime")
        requests = points_of(document, "Requests", "RequestCount")
        [proxy] = [s for s in document["services"] if s["name"] == "proxy"]
        healthy = [t["state"] for t in proxy["targets"]] == ["healthy"]  # past its initial checks
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
    dashboard: Dashboard, traffic: dict[str, list[int]]
) -> None:
    def with_errors() -> dict[str, Any] | None:
        document = dashboard.get("/api/data?range=1h")[1]
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


def test_a_bad_range_is_a_400_naming_it(dashboard: Dashboard) -> None:
    status, document = dashboard.get("/api/data?range=soon")
    assert status == 400 and "'soon'" in document["error"] and "1h" in document["error"]


def test_the_server_listens_on_127_0_0_1_only(dashboard: Dashboard) -> None:
    port = int(dashboard.url.rsplit(":", 1)[1])
    listening = [
        c.laddr
        for c in psutil.Process(dashboard.process.pid).net_connections(kind="inet")
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


def test_the_page_renders_in_a_headless_browser(dashboard: Dashboard, traffic: dict[str, list[int]]) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium); the data tests still ran")
    with tempfile.TemporaryDirectory() as profile:
        rendered = subprocess.run(
            [
                browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
                "--virtual-time-budget=20000", "--dump-dom", f"{dashboard.url}/",
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    dom = rendered.stdout
    assert 'data-loaded="true"' in dom, rendered.stderr[-2000:]
    for title in TITLES:
        assert f"<h3>{title}</h3>" in dom
    assert dom.count('class="uplot') >= len(TITLES) and "<canvas" in dom
    assert "proxy: 1 running / 1 desired" in dom
