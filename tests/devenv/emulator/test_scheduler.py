"""The emulator's ECS scheduler and fault side channel, through boto3 against a real server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.devenv.emulator_calls import aws_client, fargate_cluster
from tests.devenv.emulator_calls import report_task as report


@pytest.fixture
def ecs(inprocess_emulator: str) -> Any:
    container = {"name": "proxy", "image": "llmproxy:local", "command": ["proxy"], "essential": True}
    return fargate_cluster(inprocess_emulator, "c1", container)


def live_tasks(ecs: Any, service: str) -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster="c1", serviceName=service, desiredStatus="RUNNING")["taskArns"]
    return ecs.describe_tasks(cluster="c1", tasks=arns)["tasks"] if arns else []


def test_service_keeps_desired_count_and_replaces_a_stopped_task(inprocess_emulator: str, ecs: Any) -> None:
    ecs.create_service(
        cluster="c1", serviceName="svc-a", taskDefinition="proxy", desiredCount=2, launchType="FARGATE"
    )
    tasks = live_tasks(ecs, "svc-a")
    assert len(tasks) == 2 and {t["lastStatus"] for t in tasks} == {"PROVISIONING"}
    for task in tasks:
        report(inprocess_emulator, task["taskArn"], lastStatus="RUNNING", healthStatus="HEALTHY")
    service = ecs.describe_services(cluster="c1", services=["svc-a"])["services"][0]
    assert (service["runningCount"], service["pendingCount"]) == (2, 0)

    stopped = tasks[0]["taskArn"]
    ecs.stop_task(cluster="c1", task=stopped, reason="failover experiment")
    described = ecs.describe_tasks(cluster="c1", tasks=[stopped])["tasks"][0]
    assert described["desiredStatus"] == "STOPPED" and described["stoppedReason"] == "failover experiment"
    live = live_tasks(ecs, "svc-a")
    assert len(live) == 2 and stopped not in {t["taskArn"] for t in live}
    report(inprocess_emulator, stopped, lastStatus="STOPPED", exitCode=0)
    assert ecs.describe_tasks(cluster="c1", tasks=[stopped])["tasks"][0]["lastStatus"] == "STOPPED"


def test_a_task_that_dies_is_replaced(inprocess_emulator: str, ecs: Any) -> None:
    ecs.create_service(
        cluster="c1", serviceName="svc-b", taskDefinition="proxy", desiredCount=1, launchType="FARGATE"
    )
    [task] = live_tasks(ecs, "svc-b")
    report(inprocess_emulator, task["taskArn"], lastStatus="RUNNING")
    report(inprocess_emulator, task["taskArn"], lastStatus="STOPPED", exitCode=137, stoppedReason="killed")
    [replacement] = live_tasks(ecs, "svc-b")
    assert replacement["taskArn"] != task["taskArn"]
    died = ecs.describe_tasks(cluster="c1", tasks=[task["taskArn"]])["tasks"][0]
    assert died["stopCode"] == "EssentialContainerExited"
    assert died["containers"][0]["exitCode"] == 137


def test_scaling_and_a_rolling_deployment_keep_tasks_serving(inprocess_emulator: str, ecs: Any) -> None:
    ecs.create_service(
        cluster="c1", serviceName="svc-c", taskDefinition="proxy", desiredCount=1, launchType="FARGATE"
    )
    ecs.update_service(cluster="c1", service="svc-c", desiredCount=3)
    tasks = live_tasks(ecs, "svc-c")
    assert len(tasks) == 3
    for task in tasks:
        report(inprocess_emulator, task["taskArn"], lastStatus="RUNNING", healthStatus="HEALTHY")
    ecs.update_service(cluster="c1", service="svc-c", desiredCount=1)
    [survivor] = live_tasks(ecs, "svc-c")

    ecs.update_service(cluster="c1", service="svc-c", forceNewDeployment=True)
    live = live_tasks(ecs, "svc-c")
    assert {t["taskArn"] for t in live} >= {survivor["taskArn"]}  # the old one serves until the new is up
    [new] = [t for t in live if t["taskArn"] != survivor["taskArn"]]
    report(inprocess_emulator, new["taskArn"], lastStatus="RUNNING", healthStatus="HEALTHY")
    [after] = live_tasks(ecs, "svc-c")
    assert after["taskArn"] == new["taskArn"]
    old = ecs.describe_tasks(cluster="c1", tasks=[survivor["taskArn"]])["tasks"][0]
    assert old["desiredStatus"] == "STOPPED"


def events_after(inprocess_emulator: str, seq: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{inprocess_emulator}/_devenv/events?after={seq}") as response:
        return list(json.loads(response.read())["events"])


def test_faults_are_recorded_for_the_realizer(inprocess_emulator: str) -> None:
    rds = aws_client(inprocess_emulator, "rds")
    rds.create_db_cluster(
        DBClusterIdentifier="db1",
        Engine="aurora-postgresql",
        MasterUsername="u",
        MasterUserPassword="password123",
    )
    rds.create_db_instance(
        DBInstanceIdentifier="db1-writer",
        DBClusterIdentifier="db1",
        Engine="aurora-postgresql",
        DBInstanceClass="db.serverless",
    )
    before = events_after(inprocess_emulator, 0)
    seq = before[-1]["seq"] if before else 0
    with pytest.raises(ClientError) as refused:  # as on AWS: a failover needs a replica to promote
        rds.failover_db_cluster(DBClusterIdentifier="db1")
    assert refused.value.response["Error"]["Code"] == "InvalidDBClusterStateFault"
    rds.reboot_db_instance(DBInstanceIdentifier="db1-writer")
    assert [(e["kind"], e["resource"]) for e in events_after(inprocess_emulator, seq)] == [
        ("rds-reboot", "db1-writer")
    ]


def test_elasticache_reboot_and_test_failover_answer_as_aws(inprocess_emulator: str) -> None:
    cache = aws_client(inprocess_emulator, "elasticache")
    with pytest.raises(ClientError) as missing:
        cache.reboot_cache_cluster(CacheClusterId="nope", CacheNodeIdsToReboot=["0001"])
    assert missing.value.response["Error"]["Code"] == "CacheClusterNotFound"
    cache.create_replication_group(
        ReplicationGroupId="rg1", ReplicationGroupDescription="one node", NumCacheClusters=1, Engine="redis"
    )
    with pytest.raises(ClientError) as refused:
        cache.test_failover(ReplicationGroupId="rg1", NodeGroupId="0001")
    assert refused.value.response["Error"]["Code"] == "InvalidReplicationGroupState"


def test_control_api_rejects_bad_input(inprocess_emulator: str) -> None:
    request = urllib.request.Request(
        f"{inprocess_emulator}/_devenv/ecs/tasks/x/status", data=b"{}", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(request)
    assert bad.value.code == 400


def test_behind_a_load_balancer_an_old_task_still_in_its_first_checks_is_kept_until_the_new_one_is_healthy(
    inprocess_emulator: str, ecs: Any
) -> None:
    balancer = [
        {
            "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1",
            "containerName": "proxy",
            "containerPort": 8080,
        }
    ]
    ecs.create_service(
        cluster="c1",
        serviceName="svc-lb",
        taskDefinition="proxy",
        desiredCount=1,
        launchType="FARGATE",
        loadBalancers=balancer,
    )
    [old] = live_tasks(ecs, "svc-lb")
    report(inprocess_emulator, old["taskArn"], lastStatus="RUNNING")  # running, the ALB has not judged it yet
    ecs.update_service(cluster="c1", service="svc-lb", forceNewDeployment=True)
    live = live_tasks(ecs, "svc-lb")
    assert old["taskArn"] in {t["taskArn"] for t in live} and len(live) == 2
    [new] = [t for t in live if t["taskArn"] != old["taskArn"]]
    report(inprocess_emulator, new["taskArn"], lastStatus="RUNNING")
    assert len(live_tasks(ecs, "svc-lb")) == 2  # running is not enough behind a load balancer
    report(inprocess_emulator, new["taskArn"], lastStatus="RUNNING", healthStatus="HEALTHY")
    assert [t["taskArn"] for t in live_tasks(ecs, "svc-lb")] == [new["taskArn"]]
