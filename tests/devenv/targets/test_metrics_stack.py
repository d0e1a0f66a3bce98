"""The realized stack's CloudWatch metrics, read back through the CloudWatch API as on AWS.

On the session's shared stack, whose `time_scale` 30 makes the collector sample every 0.5 s; the tests send
bounded bursts of requests to 127.0.0.1 and compare what CloudWatch counted with what they sent.
"""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.local_stack import Stack
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

ALB = "AWS/ApplicationELB"
SAMPLE_S = 0.5  # the collector's interval at the shared stack's time_scale (30)


@pytest.fixture
def alb_dimensions(stack: Stack) -> dict[str, str]:
    """The ALB's dimensions as AWS formats them, from the ARNs (the part after `loadbalancer/`, and the
    target group's resource part)."""
    elbv2 = stack.client("elbv2")
    [balancer] = elbv2.describe_load_balancers()["LoadBalancers"]
    [group] = elbv2.describe_target_groups()["TargetGroups"]
    return {
        "LoadBalancer": balancer["LoadBalancerArn"].split(":loadbalancer/", 1)[1],
        "TargetGroup": group["TargetGroupArn"].split(":", 5)[5],
    }


def dims(**values: str) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in values.items()]


def total(
    stack: Stack, namespace: str, name: str, dimensions: list[dict[str, str]], stat: str = "Sum"
) -> float:
    """The statistic over the last hour (one period), as GetMetricStatistics answers it."""
    now = datetime.now(UTC)
    points = stack.client("cloudwatch").get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=dimensions,
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=1),
        Period=7200,
        Statistics=[stat],
    )["Datapoints"]
    return sum(float(point[stat]) for point in points)


def recent(
    stack: Stack, namespace: str, name: str, dimensions: list[dict[str, str]]
) -> tuple[float, float] | None:
    """(Minimum, Maximum) of the datapoints of the last two seconds, or None when there are none."""
    return since(stack, namespace, name, dimensions, datetime.now(UTC) - timedelta(seconds=2))


def since(
    stack: Stack, namespace: str, name: str, dimensions: list[dict[str, str]], start: datetime
) -> tuple[float, float] | None:
    """(Minimum, Maximum) of the datapoints from `start` on, or None when there are none."""
    now = datetime.now(UTC)
    points = stack.client("cloudwatch").get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=dimensions,
        StartTime=start,
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Minimum", "Maximum"],
    )["Datapoints"]
    if not points:
        return None
    return min(p["Minimum"] for p in points), max(p["Maximum"] for p in points)


def settled(read: Any, timeout_s: float = 60.0) -> float:
    """A total once it has stopped changing for a few samples (what was sent before is all published)."""
    deadline = time.monotonic() + timeout_s
    last = read()
    while time.monotonic() < deadline:
        time.sleep(SAMPLE_S * 4)
        now = read()
        if now == last:
            return float(now)
        last = now
    raise AssertionError(f"the total kept changing for {timeout_s:.0f} s")


def listed(stack: Stack, namespace: str, name: str) -> list[dict[str, str]]:
    """The dimension sets ListMetrics has for a metric."""
    metrics = stack.client("cloudwatch").list_metrics(Namespace=namespace, MetricName=name)["Metrics"]
    return [{d["Name"]: d["Value"] for d in metric["Dimensions"]} for metric in metrics]


def test_alb_ecs_rds_and_elasticache_metrics_appear_with_aws_dimensions(
    stack: Stack, alb_dimensions: dict[str, str]
) -> None:
    assert re.fullmatch(r"app/[^/]+/[0-9a-f]+", alb_dimensions["LoadBalancer"])
    assert re.fullmatch(r"targetgroup/[^/]+/[0-9a-f]+", alb_dimensions["TargetGroup"])
    for i in range(10):
        assert stack.chat(f"metrics appear {i}")[0] == 200
    lb = {"LoadBalancer": alb_dimensions["LoadBalancer"]}

    def both_sets(name: str) -> list[dict[str, str]] | None:
        found = listed(stack, ALB, name)
        return found if len(found) == 2 else None

    for name in ("RequestCount", "TargetResponseTime", "HTTPCode_Target_2XX_Count"):
        found = wait_for(functools.partial(both_sets, name))
        assert sorted(found, key=len) == [lb, alb_dimensions], name  # each combination once
    assert sorted(listed(stack, ALB, "RequestCountPerTarget"), key=len) == [
        {"TargetGroup": alb_dimensions["TargetGroup"]},
        alb_dimensions,
    ]
    assert listed(stack, ALB, "HealthyHostCount") == [alb_dimensions]

    cloudwatch = stack.client("cloudwatch")
    now = datetime.now(UTC)
    queries = [
        ("latency", ALB, "TargetResponseTime", dims(**lb), "Average"),
        ("cpu", "AWS/ECS", "CPUUtilization", dims(ClusterName="llm-proxy", ServiceName="proxy"), "Average"),
        (
            "memory",
            "AWS/ECS",
            "MemoryUtilization",
            dims(ClusterName="llm-proxy", ServiceName="proxy"),
            "Maximum",
        ),
    ]
    results = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
                    "Period": 3600,
                    "Stat": stat,
                },
            }
            for query_id, namespace, name, dimensions, stat in queries
        ],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=1),
    )["MetricDataResults"]
    values = {result["Id"]: result["Values"] for result in results}
    assert values["latency"] and all(0 < v < 5 for v in values["latency"])  # seconds, not milliseconds
    assert values["cpu"] and all(v >= 0 for v in values["cpu"])
    assert values["memory"] and all(0 < v < 100 for v in values["memory"])  # percent of the task's 512 MiB

    [cluster] = stack.client("rds").describe_db_clusters()["DBClusters"]
    database = dims(DBClusterIdentifier=cluster["DBClusterIdentifier"])
    assert total(stack, "AWS/RDS", "DatabaseConnections", database, "Maximum") >= 1  # the proxy's pool
    minimum, maximum = (
        float(cluster["ServerlessV2ScalingConfiguration"]["MinCapacity"]),
        float(cluster["ServerlessV2ScalingConfiguration"]["MaxCapacity"]),
    )
    assert minimum <= total(stack, "AWS/RDS", "ServerlessDatabaseCapacity", database, "Maximum") <= maximum
    [group] = stack.client("elasticache").describe_replication_groups()["ReplicationGroups"]
    member = group["MemberClusters"][0]
    for dimensions in (dims(CacheClusterId=member), dims(CacheClusterId=member, CacheNodeId="0001")):
        assert total(stack, "AWS/ElastiCache", "CurrConnections", dimensions, "Maximum") >= 1
        assert (
            0 < total(stack, "AWS/ElastiCache", "DatabaseMemoryUsagePercentage", dimensions, "Maximum") < 100
        )


def test_request_count_sums_match_the_requests_sent(stack: Stack, alb_dimensions: dict[str, str]) -> None:
    lb = dims(LoadBalancer=alb_dimensions["LoadBalancer"])
    both = dims(**alb_dimensions)
    per_target = dims(TargetGroup=alb_dimensions["TargetGroup"])
    before = {
        "lb": settled(lambda: total(stack, ALB, "RequestCount", lb)),
        "both": total(stack, ALB, "RequestCount", both),
        "2xx": total(stack, ALB, "HTTPCode_Target_2XX_Count", lb),
        "per_target": total(stack, ALB, "RequestCountPerTarget", per_target),
    }
    sent = 37
    assert all(stack.chat(f"counted {i}")[0] == 200 for i in range(sent))
    wait_for(lambda: total(stack, ALB, "RequestCount", lb) >= before["lb"] + sent)
    assert settled(lambda: total(stack, ALB, "RequestCount", lb)) == before["lb"] + sent
    assert total(stack, ALB, "RequestCount", both) == before["both"] + sent
    assert total(stack, ALB, "HTTPCode_Target_2XX_Count", lb) == before["2xx"] + sent
    # one healthy target: each request is one request per target
    assert total(stack, ALB, "RequestCountPerTarget", per_target) == pytest.approx(
        before["per_target"] + sent
    )


def test_the_load_balancers_own_5xx_are_counted_apart_from_the_targets(
    stack: Stack, alb_dimensions: dict[str, str]
) -> None:
    lb = dims(LoadBalancer=alb_dimensions["LoadBalancer"])

    def counts() -> dict[str, float]:
        return {
            name: total(stack, ALB, name, lb)
            for name in ("RequestCount", "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count")
        }

    settled(lambda: total(stack, ALB, "RequestCount", lb))
    before = counts()
    statuses = [stack.chat(f"failing {i}", headers={"X-Mock-Error": "500"})[0] for i in range(5)]
    assert statuses == [500] * 5  # the upstream's 500, passed on by the proxy task
    wait_for(lambda: counts()["HTTPCode_Target_5XX_Count"] == before["HTTPCode_Target_5XX_Count"] + 5)
    settled(lambda: total(stack, ALB, "RequestCount", lb))
    after_target = counts()
    assert after_target["HTTPCode_ELB_5XX_Count"] == before["HTTPCode_ELB_5XX_Count"]
    assert after_target["RequestCount"] == before["RequestCount"] + 5

    ecs = stack.client("ecs")
    cluster, service = stack.proxy_service()
    ecs.update_service(cluster=cluster, service=service, desiredCount=0)
    try:
        elbv2 = stack.client("elbv2")
        group = elbv2.describe_target_groups()["TargetGroups"][0]["TargetGroupArn"]
        wait_for(lambda: not elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"])
        wait_for(lambda: stack.health()[0] == 503)  # no target: the mirror answers itself
        settled(lambda: total(stack, ALB, "HTTPCode_ELB_5XX_Count", lb))
        before = counts()
        statuses = [stack.chat(f"no target {i}")[0] for i in range(4)]
        assert statuses == [503] * 4
        wait_for(lambda: counts()["HTTPCode_ELB_5XX_Count"] == before["HTTPCode_ELB_5XX_Count"] + 4)
        settled(lambda: total(stack, ALB, "HTTPCode_ELB_5XX_Count", lb))
        after_elb = counts()
        assert after_elb["HTTPCode_Target_5XX_Count"] == before["HTTPCode_Target_5XX_Count"]
        assert after_elb["RequestCount"] == before["RequestCount"]  # no target was chosen
    finally:
        ecs.update_service(cluster=cluster, service=service, desiredCount=1)
        wait_for(lambda: stack.health()[0] == 200, timeout_s=120)


def test_healthy_host_count_follows_a_stopped_task(stack: Stack, alb_dimensions: dict[str, str]) -> None:
    both = dims(**alb_dimensions)
    wait_for(lambda: recent(stack, ALB, "HealthyHostCount", both) == (1, 1), timeout_s=120)
    ecs = stack.client("ecs")
    cluster, _ = stack.proxy_service()
    [task] = stack.proxy_tasks()
    stopped_at = datetime.now(UTC)
    ecs.stop_task(cluster=cluster, task=task, reason="metrics: follow the healthy hosts")
    # the stopped task leaves the target group; its replacement counts once it passed its health checks
    # (a few seconds at most: a sample of 0 is looked for since the stop, not only in the last seconds)
    wait_for(
        lambda: (since(stack, ALB, "HealthyHostCount", both, stopped_at) or (1, 1))[0] == 0, timeout_s=60
    )
    wait_for(lambda: recent(stack, ALB, "HealthyHostCount", both) == (1, 1), timeout_s=120)
    assert recent(stack, ALB, "UnHealthyHostCount", both) == (0, 0)
