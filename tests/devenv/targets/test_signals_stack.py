"""Target tracking on a real stack, seen as a report reads it: a step load test through the ALB mirror at
time_scale 30 (a CloudWatch minute lasts 2 s) raises the request-count policy's high alarm, one scale-out
follows and the running count grows; afterwards a manual desired count stands until the low alarms have
their 15 datapoints, then one scale-in.

The request-count policy (500 requests a minute per target) is the one a bounded load on 2 cores reaches
for sure; the CPU policy's alarms are in the same report. Load goes to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.local_stack import Stack, running_stack
from tests.waiting import wait_for

# Unsettled: in a full-suite run the first scale-out activity came back 'Failed' (cause not yet found);
# it passed when run alone (nox -s unsettled).
pytestmark = [pytest.mark.slow, pytest.mark.unsettled]

RESOURCE = "service/llm-proxy/proxy"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A stack of its own: target tracking on (the shared one keeps its desired counts where tests set them)."""
    with running_stack({"DEVENV_TIME_SCALE": "30", "DEVENV_AUTOSCALING": "true"}) as running:
        yield running


def scaled_activities(stack: Stack) -> list[dict[str, Any]]:
    found = stack.client("application-autoscaling").describe_scaling_activities(
        ServiceNamespace="ecs", ResourceId=RESOURCE
    )["ScalingActivities"]
    return list(found)


def desired(stack: Stack) -> int:
    cluster, service = stack.proxy_service()
    [described] = stack.client("ecs").describe_services(cluster=cluster, services=[service])["services"]
    return int(described["desiredCount"])


def test_a_step_load_scales_out_once_and_the_report_shows_it(stack: Stack, tmp_path: Path) -> None:
    before = len(scaled_activities(stack))
    ran = stack.devenv(
        "loadtest", "--profile", "step", "--users", "2", "--duration", "30s",
        "--report-dir", str(tmp_path), "--output", "json", timeout=240,
    )  # fmt: skip
    summary = json.loads(ran.stdout)
    assert summary["time_scale"] == 30.0, summary["errors"]
    signals = summary["signals"]
    assert signals["errors"] == [] and signals["period_s"] == 2
    scaled = [a for a in signals["scaling_activities"] if a["scaled"]]
    assert len(scaled) == 1, signals["scaling_activities"]
    [out] = scaled
    assert out["description"].startswith("Setting desired count to ") and out["status"] == "Successful"
    high = next(a for a in signals["alarms"] if a["name"] in out["cause"])
    assert "-AlarmHigh-" in high["name"]
    assert any(c["to"] == "ALARM" and c["t"] <= out["t"] for c in high["transitions"])
    counts = signals["task_count"]
    assert counts[0]["running"] == 1
    assert max(c["running"] for c in counts) > 1
    assert any(p["value"] > 0 for p in signals["metrics"]["request_count"])
    assert len(scaled_activities(stack)) == before + 1
    run_dir = Path(summary["run_dir"])
    assert (run_dir / "signals.png").stat().st_size > 10_000
    assert json.loads((run_dir / "summary.json").read_text())["signals"]["scaling_activities"]


def test_a_manual_count_stands_until_the_low_alarms_have_their_datapoints_then_one_scale_in(
    stack: Stack,
) -> None:
    cluster, service = stack.proxy_service()
    stack.client("ecs").update_service(cluster=cluster, service=service, desiredCount=3)
    set_at = time.time()
    stop = threading.Event()

    def light_traffic() -> None:  # ~2 requests a second: data for RequestCountPerTarget, far below 450/min
        while not stop.wait(0.5):
            stack.chat("light")

    thread = threading.Thread(target=light_traffic, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while (count := desired(stack)) == 3:
            assert time.monotonic() < deadline, "no scale-in within 120 s"
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    scale_in = [a for a in scaled_activities(stack) if a["StartTime"].timestamp() >= set_at]
    assert len(scale_in) == 1, scale_in
    assert scale_in[0]["Description"] == f"Setting desired count to {count}." and count < 3
    low_name = next(n for n in scale_in[0]["Cause"].split() if "-AlarmLow-" in n)
    [low] = stack.client("cloudwatch").describe_alarms(AlarmNames=[low_name])["MetricAlarms"]
    assert low["StateValue"] == "ALARM"
    assert low["StateReason"].startswith("Threshold Crossed: 15 out of the last 15 datapoints [")
    assert scale_in[0]["StartTime"] >= low["StateUpdatedTimestamp"]
    wait_for(lambda: len(stack.proxy_tasks()) == count, timeout_s=60)
