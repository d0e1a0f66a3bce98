"""CloudWatch alarms evaluated by the real emulator (time_scale 60: a one-minute period lasts a second), fed
by PutMetricData and read back through boto3."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.cloudwatch.models import CloudWatchBackend

from devenv.emulator import metric_store, moto_patches
from devenv.targets.local import client
from tests.devenv.conftest import TIME_SCALE, start_emulator
from tests.devenv.emulator.metrics_feed import Feeder
from tests.waiting import wait_for

REGION = "us-east-1"


@pytest.fixture(scope="module")
def endpoint(scaled_emulator: str) -> str:
    return scaled_emulator


@pytest.fixture(scope="module")
def cloudwatch(endpoint: str) -> Any:
    return client("cloudwatch", endpoint, REGION)


def alarm(cloudwatch: Any, name: str) -> dict[str, Any]:
    return dict(cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0])


def in_state(cloudwatch: Any, name: str, state: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        found = alarm(cloudwatch, name)
        return found if found["StateValue"] == state else None

    return check


@pytest.mark.slow
def test_an_alarm_moves_from_insufficient_data_to_alarm_and_back_to_ok_with_history(cloudwatch: Any) -> None:
    dimensions = [{"Name": "TargetGroup", "Value": "targetgroup/tg/0123456789abcdef"}]
    cloudwatch.put_metric_alarm(
        AlarmName="unhealthy",
        Namespace="AWS/ApplicationELB",
        MetricName="UnHealthyHostCount",
        Dimensions=dimensions,
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=3,
        DatapointsToAlarm=2,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="missing",
    )
    created = alarm(cloudwatch, "unhealthy")
    assert created["StateValue"] == "INSUFFICIENT_DATA"
    assert created["StateReason"] == "Unchecked: Initial alarm creation"
    feeder = Feeder(cloudwatch, "AWS/ApplicationELB", dimensions)
    try:
        feeder.values["UnHealthyHostCount"] = 1.0
        fired = wait_for(in_state(cloudwatch, "unhealthy", "ALARM"), timeout_s=20)
        assert fired["StateReason"].startswith("Threshold Crossed: ")
        assert (
            "were greater than the threshold (0.0) (minimum 2 datapoints for OK -> ALARM transition)."
            in (fired["StateReason"])
        )
        data = json.loads(fired["StateReasonData"])
        assert data["statistic"] == "Maximum" and data["period"] == 60 and data["threshold"] == 0.0
        assert data["recentDatapoints"] and set(data["recentDatapoints"]) == {1.0}
        feeder.values["UnHealthyHostCount"] = 0.0
        recovered = wait_for(in_state(cloudwatch, "unhealthy", "OK"), timeout_s=20)
        assert recovered["StateReason"].endswith(
            "were not greater than the threshold (0.0) (minimum 2 datapoints for ALARM -> OK transition)."
        )
        assert recovered["StateUpdatedTimestamp"] > fired["StateUpdatedTimestamp"]
    finally:
        feeder.stop()
    history = cloudwatch.describe_alarm_history(AlarmName="unhealthy", HistoryItemType="StateUpdate")
    summaries = [item["HistorySummary"] for item in history["AlarmHistoryItems"]]  # newest first
    # one breaching datapoint is too recent to alarm (premature-transition rule): no stop at OK on the way
    assert summaries == ["Alarm updated from ALARM to OK", "Alarm updated from INSUFFICIENT_DATA to ALARM"]
    newest = json.loads(history["AlarmHistoryItems"][0]["HistoryData"])
    assert (newest["oldState"]["stateValue"], newest["newState"]["stateValue"]) == ("ALARM", "OK")
    everything = cloudwatch.describe_alarm_history(AlarmName="unhealthy")["AlarmHistoryItems"]
    assert everything[-1]["HistoryItemType"] == "ConfigurationUpdate"
    assert everything[-1]["HistorySummary"] == 'Alarm "unhealthy" created'
    page = cloudwatch.describe_alarm_history(AlarmName="unhealthy", MaxRecords=1)
    assert len(page["AlarmHistoryItems"]) == 1 and page["NextToken"]


@pytest.mark.parametrize(
    ("treatment", "state", "reason"),
    [
        (
            "breaching",
            "ALARM",
            "no datapoints were received for 2 periods and 2 missing datapoints were treated as [Breaching]",
        ),
        ("notBreaching", "OK", "treated as [NonBreaching]"),
    ],
)
def test_missing_data_is_treated_as_the_alarm_says(
    cloudwatch: Any, treatment: str, state: str, reason: str
) -> None:
    name = f"silent-{treatment}"
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="Devenv/Test",
        MetricName=f"never-{treatment}",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData=treatment,
    )
    decided = wait_for(in_state(cloudwatch, name, state), timeout_s=10)
    assert reason in decided["StateReason"]


def test_missing_and_ignore_keep_an_alarm_without_data_where_it_is(cloudwatch: Any) -> None:
    for treatment in ("missing", "ignore"):
        cloudwatch.put_metric_alarm(
            AlarmName=f"quiet-{treatment}",
            Namespace="Devenv/Test",
            MetricName="never",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData=treatment,
        )
    cloudwatch.set_alarm_state(AlarmName="quiet-ignore", StateValue="ALARM", StateReason="set by the test")
    time.sleep(3)  # three evaluations
    missing = alarm(cloudwatch, "quiet-missing")
    assert missing["StateValue"] == "INSUFFICIENT_DATA"
    ignored = alarm(cloudwatch, "quiet-ignore")
    assert (ignored["StateValue"], ignored["StateReason"]) == ("ALARM", "set by the test")


def test_a_sum_over_a_compressed_period_keeps_its_per_minute_meaning(cloudwatch: Any) -> None:
    """Five datapoints of 1 a second at time_scale 60 are 300 a minute: above 200, below 400."""
    expected = {"sum-above": (200, "ALARM"), "sum-below": (400, "OK")}
    for name, (threshold, _) in expected.items():
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="Devenv/Test",
            MetricName="requests",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=2,
            Threshold=threshold,
            ComparisonOperator="GreaterThanThreshold",
        )
    feeder = Feeder(cloudwatch, "Devenv/Test", [])
    try:
        feeder.values["requests"] = 1.0
        for name, (_, state) in expected.items():
            assert wait_for(in_state(cloudwatch, name, state), timeout_s=15)
        values = json.loads(alarm(cloudwatch, "sum-above")["StateReasonData"])["recentDatapoints"]
        assert all(200 < v < 400 for v in values), values
    finally:
        feeder.stop()


def test_the_stacks_metric_math_alarm_is_evaluated(cloudwatch: Any) -> None:
    """The 5xx-rate alarm of the stack: IF(requests > 0, 100 * (FILL(elb, 0) + FILL(target, 0)) / requests, 0)."""
    lb = [{"Name": "LoadBalancer", "Value": "app/llm-proxy/0123456789abcdef"}]

    def metric(query_id: str, name: str) -> dict[str, Any]:
        stat = {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": name, "Dimensions": lb}}
        return {"Id": query_id, "MetricStat": {**stat, "Period": 60, "Stat": "Sum"}, "ReturnData": False}

    cloudwatch.put_metric_alarm(
        AlarmName="error-rate",
        Metrics=[
            {
                "Id": "expr",
                "Expression": "IF(requests > 0, 100 * (FILL(elb, 0) + FILL(target, 0)) / requests, 0)",
                "ReturnData": True,
            },
            metric("requests", "RequestCount"),
            metric("elb", "HTTPCode_ELB_5XX_Count"),
            metric("target", "HTTPCode_Target_5XX_Count"),
        ],
        EvaluationPeriods=2,
        Threshold=5,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )
    feeder = Feeder(cloudwatch, "AWS/ApplicationELB", lb)
    try:
        feeder.values["RequestCount"] = 10.0
        assert wait_for(in_state(cloudwatch, "error-rate", "OK"), timeout_s=15)
        feeder.values["HTTPCode_Target_5XX_Count"] = 2.0  # 20 % of the requests
        fired = wait_for(in_state(cloudwatch, "error-rate", "ALARM"), timeout_s=15)
        rates = json.loads(fired["StateReasonData"])["recentDatapoints"]  # the first period may be partial
        assert rates[-1] == 20.0 and all(5 < rate <= 20 for rate in rates), rates
    finally:
        feeder.stop()


def test_what_the_local_cloud_cannot_evaluate_is_said(cloudwatch: Any) -> None:
    stat = {"Metric": {"Namespace": "Devenv/Test", "MetricName": "latency"}, "Period": 60, "Stat": "Average"}
    cloudwatch.put_metric_alarm(
        AlarmName="repeat-fill",
        Metrics=[
            {"Id": "filled", "Expression": "FILL(m, REPEAT)", "ReturnData": True},
            {"Id": "m", "MetricStat": stat, "ReturnData": False},
        ],
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    said = wait_for(
        lambda: (a := alarm(cloudwatch, "repeat-fill"))["StateReason"].startswith("Not evaluated") and a,
        timeout_s=10,
    )
    assert said["StateValue"] == "INSUFFICIENT_DATA" and "FILL(..., REPEAT)" in said["StateReason"]


def test_set_alarm_state_runs_the_sns_action_and_is_recorded(endpoint: str, cloudwatch: Any) -> None:
    sns, sqs = client("sns", endpoint, REGION), client("sqs", endpoint, REGION)
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="alarm-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    cloudwatch.put_metric_alarm(
        AlarmName="paged",
        Namespace="Devenv/Test",
        MetricName="never-paged",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="ignore",
        AlarmActions=[topic],
    )
    cloudwatch.set_alarm_state(AlarmName="paged", StateValue="ALARM", StateReason="drill")
    [message] = wait_for(lambda: sqs.receive_message(QueueUrl=queue).get("Messages"), timeout_s=10)
    notification = json.loads(json.loads(message["Body"])["Message"])
    assert (notification["AlarmName"], notification["NewStateValue"], notification["NewStateReason"]) == (
        "paged",
        "ALARM",
        "drill",
    )
    actions = cloudwatch.describe_alarm_history(AlarmName="paged", HistoryItemType="Action")[
        "AlarmHistoryItems"
    ]
    assert actions[0]["HistorySummary"] == f"Successfully executed action {topic}"


def test_the_emulator_reports_its_clock(endpoint: str) -> None:
    url = endpoint.replace("localhost", "127.0.0.1")
    with urllib.request.urlopen(f"{url}/_devenv/clock") as response:
        clock = json.loads(response.read())
    assert clock == {"time_scale": TIME_SCALE, "metric_retention_s": 600}


def test_old_metric_data_is_pruned_from_moto_and_the_index() -> None:
    backend = CloudWatchBackend(REGION, "123456789012")
    moto_patches.install()
    now = datetime.now(UTC)
    old, recent = now - timedelta(hours=4), now - timedelta(minutes=1)
    backend.put_metric_data(
        "Devenv/Test",
        [
            {"MetricName": "m", "Value": 1.0, "Timestamp": old},
            {"MetricName": "m", "Value": 2.0, "Timestamp": recent},
        ],
    )
    key = metric_store.series_key("Devenv/Test", "m", [])
    assert len(metric_store.window(backend, key, 0, now.timestamp() + 1, None)) == 2
    metric_store.prune([backend], now.timestamp())
    assert [d.value for d in backend.metric_data] == [2.0]  # type: ignore[attr-defined]
    assert [s.sample.value for s in metric_store.window(backend, key, 0, now.timestamp() + 1, None)] == [2.0]


def test_an_emulator_refuses_a_bad_time_scale(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=re.escape("DEVENV_TIME_SCALE='0.5' is not a valid time_scale")):
        start_emulator({"DEVENV_TIME_SCALE": "0.5"}, tmp_path / "emulator.log")
