"""GetMetricData through boto3 against the emulator: percentiles and the dashboard's metric math."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devenv.emulator import moto_patches

LB = [{"Name": "LoadBalancer", "Value": "app/alb/0123456789abcdef"}]
MINUTE = 60


@pytest.fixture(scope="module")
def cloudwatch(inprocess_emulator: str) -> Any:
    moto_patches.install()
    return boto3.client(
        "cloudwatch",
        endpoint_url=inprocess_emulator,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture(scope="module")
def minutes(cloudwatch: Any) -> list[datetime]:
    """Two whole minutes ago and one: 10 requests and 2 target 5xx, then 4 requests and no 5xx; latencies
    1..10 ms in the first."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    first, second = now - timedelta(minutes=2), now - timedelta(minutes=1)

    def put(name: str, value: float, at: datetime) -> None:
        cloudwatch.put_metric_data(
            Namespace="AWS/ApplicationELB",
            MetricData=[{"MetricName": name, "Dimensions": LB, "Value": value, "Timestamp": at}],
        )

    for i in range(10):
        put("RequestCount", 1, first + timedelta(seconds=i))
        put("TargetResponseTime", (i + 1) / 1000, first + timedelta(seconds=i))
    put("HTTPCode_Target_5XX_Count", 2, first)
    for i in range(4):
        put("RequestCount", 1, second + timedelta(seconds=i))
    return [first, second]


def query(id_: str, name: str, stat: str, **extra: Any) -> dict[str, Any]:
    metric = {"Namespace": "AWS/ApplicationELB", "MetricName": name, "Dimensions": LB}
    return {"Id": id_, "MetricStat": {"Metric": metric, "Period": MINUTE, "Stat": stat}, **extra}


def get(cloudwatch: Any, minutes: list[datetime], queries: list[dict[str, Any]]) -> dict[str, Any]:
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=queries,
        StartTime=minutes[0] - timedelta(seconds=30),
        EndTime=minutes[-1] + timedelta(minutes=1),
        ScanBy="TimestampAscending",
    )
    return {r["Id"]: r for r in answer["MetricDataResults"]}


def test_percentiles_are_computed_per_period(cloudwatch: Any, minutes: list[datetime]) -> None:
    found = get(
        cloudwatch,
        minutes,
        [query("p50", "TargetResponseTime", "p50"), query("p99", "TargetResponseTime", "p99")],
    )
    assert found["p50"]["Timestamps"] == [minutes[0]]
    assert found["p50"]["Values"] == [0.005] and found["p99"]["Values"] == [0.01]


def test_the_dashboards_5xx_rate_is_the_expression_applied_to_its_inputs(
    cloudwatch: Any, minutes: list[datetime]
) -> None:
    found = get(
        cloudwatch,
        minutes,
        [
            query("requests", "RequestCount", "Sum", ReturnData=False),
            query("elb", "HTTPCode_ELB_5XX_Count", "Sum", ReturnData=False),
            query("target", "HTTPCode_Target_5XX_Count", "Sum", ReturnData=False),
            {
                "Id": "rate",
                "Expression": "IF(requests > 0, 100 * (FILL(elb, 0) + FILL(target, 0)) / requests, 0)",
                "Label": "5xx rate (%)",
            },
        ],
    )
    assert set(found) == {"rate"}  # ReturnData false hides the inputs
    assert found["rate"]["Label"] == "5xx rate (%)"
    assert found["rate"]["Timestamps"] == minutes
    assert found["rate"]["Values"] == [20.0, 0.0]


def test_an_expression_the_local_cloud_does_not_evaluate_is_a_400_naming_it(
    cloudwatch: Any, minutes: list[datetime]
) -> None:
    with pytest.raises(ClientError) as raised:
        get(cloudwatch, minutes, [query("m", "RequestCount", "Sum"), {"Id": "r", "Expression": "RATE(m)"}])
    assert "RATE" in str(raised.value)


def test_values_and_counts_give_percentiles_over_every_count(
    cloudwatch: Any, minutes: list[datetime]
) -> None:
    """90 fast answers and 10 slow ones in one datum: p50 is fast, p95 slow, the Sum counts all 100."""
    at = minutes[0] + timedelta(seconds=30)
    metric = {
        "MetricName": "TargetResponseTime",
        "Dimensions": [{"Name": "LoadBalancer", "Value": "app/d/1"}],
    }
    cloudwatch.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[{**metric, "Values": [0.002, 0.5], "Counts": [90, 10], "Timestamp": at}],
    )

    def stat(id_: str, name: str) -> dict[str, Any]:
        return {
            "Id": id_,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/ApplicationELB", **metric},
                "Period": MINUTE,
                "Stat": name,
            },
        }

    found = get(cloudwatch, minutes, [stat("p50", "p50"), stat("p95", "p95"), stat("n", "SampleCount")])
    assert (found["p50"]["Values"], found["p95"]["Values"], found["n"]["Values"]) == ([0.002], [0.5], [100.0])
