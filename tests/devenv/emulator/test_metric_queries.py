"""CloudWatch's metric queries through boto3 against the emulator: a metric is its exact dimension set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from devenv.emulator import moto_patches

LB = {"Name": "LoadBalancer", "Value": "app/alb/0123456789abcdef"}
TG = {"Name": "TargetGroup", "Value": "targetgroup/tg/0123456789abcdef"}


@pytest.fixture(scope="module")
def cloudwatch(inprocess_emulator: str) -> Any:
    moto_patches.install()
    client = boto3.client(
        "cloudwatch",
        endpoint_url=inprocess_emulator,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    now = datetime.now(UTC)
    for value in (3.0, 4.0):  # two samples, each published at the load balancer and at its target group
        client.put_metric_data(
            Namespace="AWS/ApplicationELB",
            MetricData=[
                {
                    "MetricName": "RequestCount",
                    "Dimensions": [LB],
                    "Value": value,
                    "Timestamp": now,
                    "Unit": "Count",
                },
                {
                    "MetricName": "RequestCount",
                    "Dimensions": [TG, LB],
                    "Value": value,
                    "Timestamp": now,
                    "Unit": "Count",
                },
            ],
        )
    return client


def request_sum(cloudwatch: Any, dimensions: list[dict[str, str]]) -> list[float]:
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/ApplicationELB",
        MetricName="RequestCount",
        Dimensions=dimensions,
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=10),
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    return [point["Sum"] for point in points]


def test_statistics_are_of_the_exact_dimension_set_asked_for(cloudwatch: Any) -> None:
    assert request_sum(cloudwatch, [LB]) == [7.0]  # not 14: the target group's datapoints are another metric
    assert request_sum(cloudwatch, [LB, TG]) == [7.0]  # in any order
    assert request_sum(cloudwatch, [TG]) == []  # no such metric
    assert request_sum(cloudwatch, []) == []


def test_list_metrics_lists_each_metric_once(cloudwatch: Any) -> None:
    metrics = cloudwatch.list_metrics(Namespace="AWS/ApplicationELB", MetricName="RequestCount")["Metrics"]
    assert sorted(len(m["Dimensions"]) for m in metrics) == [1, 2]
    filtered = cloudwatch.list_metrics(Namespace="AWS/ApplicationELB", Dimensions=[TG])["Metrics"]
    assert [sorted(d["Name"] for d in m["Dimensions"]) for m in filtered] == [["LoadBalancer", "TargetGroup"]]
