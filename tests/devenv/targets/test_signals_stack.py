"""Target tracking on the session's shared stack (resumed for the test), seen as a report reads it: a step
load test through the ALB mirror at time_scale 30 (a CloudWatch minute lasts 2 s) raises the request-count
policy's high alarm, a scale-out follows and the running count grows; afterwards a manual desired count stands until the low alarms have
their 15 datapoints, then one scale-in.

The request-count policy (500 requests a minute per target) is the one a bounded load on 2 cores reaches
for sure; the CPU policy's alarms are in the same report. Load goes to 127.0.0.1 only.

On a busy machine (a full suite on 2 cores) two things are AWS's behaviour, not failures: the step load's
second step may scale out again (the first scale-out not reaching MaxCapacity), and light traffic leaves
some compressed minutes without a request, so the low alarm fires on fewer than 15 real datapoints (the
missing ones under AWS's rule against premature transitions).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devenv.targets import scaling
from tests.local_stack import Stack
from tests.waiting import wait_for

# A step load test with its report (up to 240 s) and the shared stack's return to one task afterwards.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(540)]

RESOURCE = "service/llm-proxy/proxy"


@pytest.fixture
def scaling_on(stack: Stack) -> Iterator[Stack]:
    """The session's shared stack (time_scale 30) with the proxy's target tracking resumed, as an AWS user
    resumes it (RegisterScalableTarget's SuspendedState); suspended again afterwards and the service put
    back to one task, the shared stack's steady state."""
    autoscaling = stack.client("application-autoscaling")
    # an alarm still in ALARM from an earlier load would act at once (its action repeats while it lasts)
    wait_for(lambda: not high_alarms_firing(stack), timeout_s=60, describe=lambda: high_alarms_firing(stack))
    scaling.set_suspended(autoscaling, RESOURCE, scaling.RESUMED)
    try:
        yield stack
    finally:
        scaling.set_suspended(autoscaling, RESOURCE, scaling.SUSPENDED)
        cluster, service = stack.proxy_service()
        stack.client("ecs").update_service(cluster=cluster, service=service, desiredCount=1)
        stack.await_steady()


def high_alarms_firing(stack: Stack) -> list[str]:
    """The proxy's target-tracking high alarms now in ALARM."""
    alarms = stack.client("cloudwatch").describe_alarms(
        AlarmNamePrefix=f"TargetTracking-{RESOURCE}-AlarmHigh-"
    )
    return [alarm["AlarmName"] for alarm in alarms["MetricAlarms"] if alarm["StateValue"] == "ALARM"]


def scaled_activities(stack: Stack) -> list[dict[str, Any]]:
    found = stack.client("application-autoscaling").describe_scaling_activities(
        ServiceNamespace="ecs", ResourceId=RESOURCE
    )["ScalingActivities"]
    return list(found)


def desired(stack: Stack) -> int:
    cluster, service = stack.proxy_service()
    [described] = stack.client("ecs").describe_services(cluster=cluster, services=[service])["services"]
    return int(described["desiredCount"])


def test_a_step_load_scales_out_and_the_report_shows_it(scaling_on: Stack, tmp_path: Path) -> None:
    stack = scaling_on
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
    assert scaled, signals["scaling_activities"]
    out = scaled[0]
    assert out["description"].startswith("Setting desired count to ") and out["status"] == "Successful"
    high = next(a for a in signals["alarms"] if a["name"] in out["cause"])
    assert "-AlarmHigh-" in high["name"]
    assert any(c["to"] == "ALARM" and c["t"] <= out["t"] for c in high["transitions"])
    # every change under the load is a scale-out by a high alarm, each to more tasks than the one before
    wanted = [int(a["description"].removeprefix("Setting desired count to ").rstrip(".")) for a in scaled]
    assert wanted == sorted(set(wanted)) and wanted[0] > 1, scaled
    assert all("-AlarmHigh-" in a["cause"] and a["status"] == "Successful" for a in scaled), scaled
    counts = signals["task_count"]
    assert counts[0]["running"] == 1
    assert max(c["running"] for c in counts) > 1
    assert any(p["value"] > 0 for p in signals["metrics"]["request_count"])
    # the API's own list agrees over the run (a scale-in may follow once the load has stopped)
    start = datetime.fromisoformat(signals["started_at"])
    end = start + timedelta(seconds=signals["duration_s"])
    found = scaled_activities(stack)  # newest first
    during = [a for a in found[: len(found) - before] if a["StartTime"] <= end]
    assert sorted(a["Description"] for a in during) == sorted(a["description"] for a in scaled)
    run_dir = Path(summary["run_dir"])
    assert (run_dir / "signals.png").stat().st_size > 10_000
    assert json.loads((run_dir / "summary.json").read_text())["signals"]["scaling_activities"]


# Unsettled: in CI, beside the other xdist worker's tests, the proxy tasks' CPU (against their 0.25 vCPU)
# raised the CPU policy's high alarm and the service scaled out 3 -> 4 before the low alarms completed, as
# AWS would under that load; `nox -s unsettled` runs it on a quiet machine.
@pytest.mark.unsettled
def test_a_manual_count_stands_until_the_low_alarms_have_their_datapoints_then_one_scale_in(
    scaling_on: Stack,
) -> None:
    stack = scaling_on
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
    assert low["EvaluationPeriods"] == 15 and low.get("DatapointsToAlarm", 15) == 15
    # every real datapoint of the 15 below 90 % of the target; periods without a request are missing
    reason = re.fullmatch(
        r"Threshold Crossed: (\d+) out of the last 15 datapoints \[.*\] (?:was|were) less than the threshold "
        r"\(450\.0\) \(minimum 15 datapoints for OK -> ALARM transition\)\.",
        low["StateReason"],
    )
    assert reason is not None, low["StateReason"]
    real = json.loads(low["StateReasonData"])["recentDatapoints"]
    assert int(reason.group(1)) == len(real) and all(value < 450 for value in real)
    assert scale_in[0]["StartTime"] >= low["StateUpdatedTimestamp"]
    wait_for(lambda: len(stack.proxy_tasks()) == count, timeout_s=60)
