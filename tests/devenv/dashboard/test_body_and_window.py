"""The dashboard's pure parts: a DashboardBody read as CloudWatch reads it, the data endpoint's window,
and the command's answer when nothing is deployed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devenv.dashboard import body
from devenv.dashboard.server import BadWindow, window
from devenv.errors import TargetError
from tests.conftest import reachable_tmpdir

BODY = {
    "widgets": [
        {
            "type": "metric", "x": 12, "y": 6, "width": 12, "height": 6,
            "properties": {
                "title": "Requests", "period": 60, "stat": "Sum",
                "yAxis": {"left": {"min": 0}},
                "metrics": [
                    ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", "app/a/1", {"id": "requests"}],
                    [".", "HTTPCode_ELB_5XX_Count", ".", ".", {"id": "elb", "visible": False, "stat": "Maximum"}],
                    [{"expression": "100 * elb / requests", "label": "rate", "yAxis": "right", "id": "rate"}],
                ],
            },
        },
        {"type": "text", "x": 0, "y": 0, "width": 24, "height": 2, "properties": {"markdown": "# hello"}},
    ]
}  # fmt: skip


def test_a_body_gives_widgets_in_their_grid_places_with_their_series() -> None:
    requests, text = body.parse(json.dumps(BODY))
    assert (requests.kind, requests.x, requests.y, requests.width, requests.height) == (
        "metric",
        12,
        6,
        12,
        6,
    )
    count, errors, rate = requests.series
    assert count.metric == {
        "Namespace": "AWS/ApplicationELB",
        "MetricName": "RequestCount",
        "Dimensions": [{"Name": "LoadBalancer", "Value": "app/a/1"}],
    }
    assert (count.stat, count.period_s, count.visible, count.label) == ("Sum", 60, True, "RequestCount Sum")
    assert errors.metric is not None and errors.metric["MetricName"] == "HTTPCode_ELB_5XX_Count"
    assert errors.metric["Dimensions"] == count.metric["Dimensions"]  # "." repeats the row above
    assert (errors.stat, errors.visible) == ("Maximum", False)
    assert (rate.expression, rate.axis, rate.stat) == ("100 * elb / requests", "right", None)
    assert (text.kind, text.series) == ("text", [])


def test_queries_compress_periods_by_the_time_scale() -> None:
    [requests, _] = body.parse(json.dumps(BODY))
    queries = body.queries(requests, time_scale=30)
    assert [q["Id"] for q in queries] == ["requests", "elb", "rate"]
    assert queries[0]["MetricStat"]["Period"] == 2 and queries[2]["Expression"] == "100 * elb / requests"


def test_a_body_cloudwatch_would_not_read_is_a_target_error() -> None:
    with pytest.raises(TargetError, match="not one CloudWatch reads"):
        body.parse("{not json")


def test_the_window_is_a_range_ending_now_or_start_and_end() -> None:
    assert window({}, 10_000.0) == (6_400.0, 10_000.0)
    assert window({"range": "3h"}, 20_000.0) == (9_200.0, 20_000.0)
    assert window({"start": "100", "end": "200"}, 1e9) == (100.0, 200.0)
    for bad in (
        {"range": "soon"},
        {"range": "0h"},
        {"range": "30d"},
        {"start": "x"},
        {"start": "5", "end": "1"},
    ):
        with pytest.raises(BadWindow):
            window(bad, 10_000.0)


def test_without_a_local_stack_the_command_says_so_and_exits_7() -> None:
    state = reachable_tmpdir("devenv-dashboard-none-")
    ran = subprocess.run(
        [sys.executable, "-m", "devenv", "--state-dir", str(state), "dashboard", "--no-open"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode == 7, ran.stderr  # the README's exit code for "devenv is not running"
    assert "no emulator" in ran.stderr and "devenv up" in ran.stderr and "Traceback" not in ran.stderr


@pytest.mark.parametrize(
    ("args", "problem"),
    [(["--end", "100"], "--end needs --start"), (["--start", "200", "--end", "100"], "is not after --start")],
)
def test_a_window_without_a_start_or_ending_before_it_is_a_usage_error(args: list[str], problem: str) -> None:
    state = reachable_tmpdir("devenv-dashboard-window-")
    ran = subprocess.run(
        [sys.executable, "-m", "devenv", "--state-dir", str(state), "dashboard", "--no-open", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode == 2, ran.stderr
    assert problem in ran.stderr and "Traceback" not in ran.stderr
