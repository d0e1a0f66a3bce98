"""Target tracking in the real emulator (time_scale 60): the policy's alarms as AWS shapes them, scaling
only through them, the scaling activities AWS reports. Desired counts are read through ECS; no task
process runs (the scheduler's tasks stay PROVISIONING, which target tracking does not look at)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devenv.targets import scaling
from devenv.targets.local import client
from tests.devenv.emulator.metrics_feed import Feeder
from tests.waiting import wait_for

pytestmark = pytest.mark.slow  # waits out alarm windows (15 datapoints at time_scale 60)

REGION = "us-east-1"
CLUSTER = "tt"
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def aws(scaled_emulator: str) -> Any:
    def make(service: str) -> Any:
        return client(service, scaled_emulator, REGION)

    ecs = make("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    ecs.register_task_definition(
        family="web",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "web", "image": "llmproxy:local", "essential": True}],
    )
    return make


def service(aws: Any, name: str, desired: int, low: int, high: int) -> str:
    """An ECS service with a scalable target; returns its resource id."""
    aws("ecs").create_service(
        cluster=CLUSTER, serviceName=name, taskDefinition="web", desiredCount=desired, launchType="FARGATE"
    )
    resource = f"service/{CLUSTER}/{name}"
    aws("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension=scaling.DIMENSION,
        MinCapacity=low,
        MaxCapacity=high,
    )
    return resource


def policy(aws: Any, resource: str, name: str, **configuration: Any) -> dict[str, Any]:
    return dict(
        aws("application-autoscaling").put_scaling_policy(
            PolicyName=name,
            ServiceNamespace="ecs",
            ResourceId=resource,
            ScalableDimension=scaling.DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration=configuration,
        )
    )


def cpu(target: float, **extra: Any) -> dict[str, Any]:
    predefined = {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}
    return {"TargetValue": target, "PredefinedMetricSpecification": predefined, **extra}


def desired(aws: Any, name: str) -> int:
    return int(aws("ecs").describe_services(cluster=CLUSTER, services=[name])["services"][0]["desiredCount"])


def activities(aws: Any, resource: str, not_scaled: bool = False) -> list[dict[str, Any]]:
    found = aws("application-autoscaling").describe_scaling_activities(
        ServiceNamespace="ecs", ResourceId=resource, IncludeNotScaledActivities=not_scaled
    )
    return list(found["ScalingActivities"])


def alarms(aws: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    found = aws("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
    return {("high" if "-AlarmHigh-" in a["AlarmName"] else "low"): a for a in found}


@pytest.fixture
def cpu_feed(aws: Any, service_name: str) -> Iterator[Feeder]:
    """Puts CPUUtilization for the test's service, as the metrics publisher does."""
    dimensions = [{"Name": "ClusterName", "Value": CLUSTER}, {"Name": "ServiceName", "Value": service_name}]
    feeder = Feeder(aws("cloudwatch"), "AWS/ECS", dimensions, unit="Percent")
    yield feeder
    feeder.stop()


def test_a_policy_gets_the_alarms_aws_creates_for_it(aws: Any) -> None:
    resource = service(aws, "shapes", desired=1, low=1, high=4)
    created = policy(aws, resource, "cpu", **cpu(50))
    names = [a["AlarmName"] for a in created["Alarms"]]
    assert re.fullmatch(f"TargetTracking-{resource}-AlarmHigh-{UUID}", names[0])
    assert re.fullmatch(f"TargetTracking-{resource}-AlarmLow-{UUID}", names[1])
    shaped = alarms(aws, names)
    action = shaped["high"]["AlarmActions"][0]
    assert re.fullmatch(re.escape(created["PolicyARN"]) + f":createdBy/{UUID}", action)
    for kind, operator, periods, threshold in (
        ("high", "GreaterThanThreshold", 3, 50.0),
        ("low", "LessThanThreshold", 15, 45.0),
    ):
        alarm = shaped[kind]
        assert (
            alarm["AlarmDescription"] == f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {action}."
        )
        assert (alarm["ComparisonOperator"], alarm["EvaluationPeriods"], alarm["Threshold"]) == (
            operator,
            periods,
            threshold,
        )
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == (
            "AWS/ECS",
            "CPUUtilization",
            "Average",
            60,
        )
        assert alarm["Dimensions"] == [
            {"Name": "ClusterName", "Value": CLUSTER},
            {"Name": "ServiceName", "Value": "shapes"},
        ]
        assert alarm["AlarmActions"] == [action]
    listed = aws("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="ecs", ResourceId=resource
    )
    assert [a["AlarmName"] for a in listed["ScalingPolicies"][0]["Alarms"]] == names

    label = "app/llm-proxy/0123456789abcdef/targetgroup/proxy/fedcba9876543210"
    requests = policy(
        aws,
        resource,
        "requests",
        TargetValue=500,
        PredefinedMetricSpecification={
            "PredefinedMetricType": "ALBRequestCountPerTarget",
            "ResourceLabel": label,
        },
        DisableScaleIn=True,
    )
    [only] = alarms(aws, [a["AlarmName"] for a in requests["Alarms"]]).values()  # no low alarm
    assert (only["Namespace"], only["MetricName"], only["Statistic"]) == (
        "AWS/ApplicationELB",
        "RequestCountPerTarget",
        "Sum",
    )
    assert only["Dimensions"] == [{"Name": "TargetGroup", "Value": "targetgroup/proxy/fedcba9876543210"}]

    updated = policy(aws, resource, "cpu", **cpu(60))
    assert updated["PolicyARN"] == created["PolicyARN"]
    assert not aws("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]  # replaced
    assert alarms(aws, [a["AlarmName"] for a in updated["Alarms"]])["high"]["Threshold"] == 60.0

    aws("application-autoscaling").delete_scaling_policy(
        PolicyName="requests",
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension=scaling.DIMENSION,
    )
    assert not aws("cloudwatch").describe_alarms(AlarmNames=[only["AlarmName"]])["MetricAlarms"]
    aws("application-autoscaling").deregister_scalable_target(
        ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=scaling.DIMENSION
    )
    assert not aws("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="ecs", ResourceId=resource
    )["ScalingPolicies"]
    assert not aws("cloudwatch").describe_alarms(AlarmNamePrefix=f"TargetTracking-{resource}-")[
        "MetricAlarms"
    ]


def test_a_bad_resource_label_is_refused_naming_the_format(aws: Any) -> None:
    resource = service(aws, "labels", desired=1, low=1, high=2)
    with pytest.raises(ClientError) as caught:
        policy(
            aws,
            resource,
            "requests",
            TargetValue=500,
            PredefinedMetricSpecification={
                "PredefinedMetricType": "ALBRequestCountPerTarget",
                "ResourceLabel": "x",
            },
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "app/<load-balancer-name>/<id>/targetgroup/<target-group-name>/<id>" in str(caught.value)


@pytest.mark.parametrize("service_name", ["busy"])
def test_high_alarm_scales_out_once_and_low_alarm_scales_in_after_fifteen_datapoints(
    aws: Any, service_name: str, cpu_feed: Feeder
) -> None:
    resource = service(aws, service_name, desired=1, low=1, high=3)
    created = policy(aws, resource, "cpu", **cpu(50, ScaleOutCooldown=600, ScaleInCooldown=60))
    high, low = (a["AlarmName"] for a in created["Alarms"])
    cpu_feed.values["CPUUtilization"] = 90.0  # 1 task x 90 / 50 -> 2
    wait_for(lambda: desired(aws, service_name) == 2, timeout_s=20)
    [out] = activities(aws, resource)
    assert out["Description"] == "Setting desired count to 2."
    assert out["Cause"] == f"monitor alarm {high} in state ALARM triggered policy cpu"
    assert (out["StatusCode"], out["StatusMessage"]) == (
        "Successful",
        "Successfully set desired count to 2. Change successfully fulfilled by ecs.",
    )

    cpu_feed.values["CPUUtilization"] = 10.0  # 2 tasks x 10 / 50 -> 1, once the low alarm has 15 datapoints
    deadline = time.monotonic() + 40
    while (count := desired(aws, service_name)) != 1:
        assert count == 2, f"desired count {count} while the low alarm gathers its datapoints"
        assert time.monotonic() < deadline, "no scale-in within 40 s"
        time.sleep(0.2)
    low_alarm = alarms(aws, [low])["low"]  # read after the count dropped: it must already be in ALARM
    assert low_alarm["StateValue"] == "ALARM"
    assert low_alarm["StateReason"].startswith("Threshold Crossed: 15 out of the last 15 datapoints [")
    assert low_alarm["StateReason"].endswith(
        "were less than the threshold (45.0) (minimum 15 datapoints for OK -> ALARM transition)."
    )
    scaled = activities(aws, resource)
    assert [a["Description"] for a in scaled] == [
        "Setting desired count to 1.",
        "Setting desired count to 2.",
    ]
    assert scaled[0]["Cause"] == f"monitor alarm {low} in state ALARM triggered policy cpu"
    assert scaled[0]["StartTime"] >= low_alarm["StateUpdatedTimestamp"]


@pytest.mark.parametrize("service_name", ["manual"])
def test_a_manual_desired_count_stands_until_an_alarm_says_otherwise(
    aws: Any, service_name: str, cpu_feed: Feeder
) -> None:
    resource = service(aws, service_name, desired=1, low=1, high=4)
    created = policy(aws, resource, "cpu", **cpu(50, ScaleInCooldown=60))
    cpu_feed.values["CPUUtilization"] = 48.0  # within the band: neither above 50 nor below 45
    wait_for(
        lambda: (
            {a["StateValue"] for a in alarms(aws, [a["AlarmName"] for a in created["Alarms"]]).values()}
            == {"OK"}
        ),
        timeout_s=20,
    )
    aws("ecs").update_service(cluster=CLUSTER, service=service_name, desiredCount=3)
    time.sleep(18)  # longer than the low alarm's 15 periods
    assert desired(aws, service_name) == 3 and activities(aws, resource, not_scaled=True) == []
    cpu_feed.values["CPUUtilization"] = 10.0  # 3 x 10 / 50 -> 1
    wait_for(lambda: desired(aws, service_name) == 1, timeout_s=40)
    [scale_in] = activities(aws, resource)
    assert scale_in["Description"] == "Setting desired count to 1."


@pytest.mark.parametrize("service_name", ["frozen"])
def test_suspended_scaling_changes_nothing_and_at_the_max_a_not_scaled_activity_says_why(
    aws: Any, service_name: str, cpu_feed: Feeder
) -> None:
    resource = service(aws, service_name, desired=1, low=1, high=1)
    created = policy(aws, resource, "cpu", **cpu(50))
    client_ = aws("application-autoscaling")
    scaling.set_suspended(client_, resource, scaling.SUSPENDED)
    cpu_feed.values["CPUUtilization"] = 95.0
    high = created["Alarms"][0]["AlarmName"]
    wait_for(lambda: alarms(aws, [high])["high"]["StateValue"] == "ALARM", timeout_s=20)
    time.sleep(2)  # two more invocations
    assert activities(aws, resource, not_scaled=True) == [] and desired(aws, service_name) == 1
    scaling.set_suspended(client_, resource, scaling.RESUMED)
    [blocked] = wait_for(lambda: activities(aws, resource, not_scaled=True), timeout_s=10)
    assert (blocked["Description"], blocked["StatusCode"]) == (
        "Attempting to scale due to alarm triggered",
        "Failed",
    )
    assert blocked["NotScaledReasons"] == [
        {"Code": "AlreadyAtMaxCapacity", "MaxCapacity": 1, "CurrentCapacity": 1}
    ]
    assert activities(aws, resource) == []  # not-scaled activities only when asked for
    time.sleep(2)
    assert len(activities(aws, resource, not_scaled=True)) == 1  # once, not every minute
