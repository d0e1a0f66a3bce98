"""The emulator's ECS scheduler and fault side channel, through boto3 against a real server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devenv.realize.control_client import ecs_digest
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


@pytest.mark.parametrize("rollback", [True, False])
def test_the_circuit_breaker_stops_a_deployment_whose_tasks_fail_to_start(
    inprocess_emulator: str, ecs: Any, rollback: bool
) -> None:
    name = f"svc-cb-{rollback}"
    ecs.create_service(
        cluster="c1", serviceName=name, taskDefinition="proxy", desiredCount=1, launchType="FARGATE"
    )
    ecs.update_service(
        cluster="c1",
        service=name,
        deploymentConfiguration={
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": True, "rollback": rollback},
        },
    )
    [old] = live_tasks(ecs, name)
    report(inprocess_emulator, old["taskArn"], lastStatus="RUNNING", healthStatus="HEALTHY")
    completed = ecs.describe_services(cluster="c1", services=[name])["services"][0]["deployments"][0]
    assert completed["rolloutState"] == "COMPLETED"
    ecs.update_service(cluster="c1", service=name, forceNewDeployment=True)
    failed_id = ecs.describe_services(cluster="c1", services=[name])["services"][0]["deployments"][0]["id"]
    assert failed_id != completed["id"]
    for _attempt in range(3):  # ECS's threshold for one desired task: 3 failed starts
        [new] = [t for t in live_tasks(ecs, name) if t["taskArn"] != old["taskArn"]]
        report(
            inprocess_emulator, new["taskArn"], lastStatus="STOPPED", exitCode=1, stoppedReason="SyntaxError"
        )
    assert [t["taskArn"] for t in live_tasks(ecs, name)] == [old["taskArn"]]  # no fourth start
    service = ecs.describe_services(cluster="c1", services=[name])["services"][0]
    messages = [e["message"] for e in service["events"]]
    assert f"(service {name}) (deployment {failed_id}) deployment failed: tasks failed to start." in messages
    if rollback:
        assert f"(service {name}) rolling back to deployment {completed['id']}." in messages
        assert service["deployments"][0]["id"] == completed["id"]
        assert service["deployments"][0]["rolloutState"] == "COMPLETED"
    else:
        assert service["deployments"][0]["id"] == failed_id
        assert service["deployments"][0]["rolloutState"] == "FAILED"
        assert "circuit breaker" in service["deployments"][0]["rolloutStateReason"]
    # a newer deployment starts afresh
    ecs.update_service(cluster="c1", service=name, forceNewDeployment=True)
    assert len(live_tasks(ecs, name)) == 2


TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/2"


def lb_service(ecs: Any, name: str, desired: int, **template_settings: Any) -> None:
    """A service behind a target group; `template_settings` (deployment_configuration,
    health_check_grace_period_seconds) as the emulator's CloudFormation model keeps them from a template
    (moto's CreateService drops both)."""
    ecs.create_service(
        cluster="c1",
        serviceName=name,
        taskDefinition="proxy",
        desiredCount=desired,
        launchType="FARGATE",
        loadBalancers=[{"targetGroupArn": TARGET_GROUP, "containerName": "proxy", "containerPort": 8080}],
    )
    from moto.ecs.models import ecs_backends

    service = ecs_backends["123456789012"]["us-east-1"].services[f"c1:{name}"]
    for key, value in template_settings.items():
        setattr(service, key, value)


def test_an_unhealthy_task_is_replaced_first_and_stops_once_its_replacement_is_healthy(
    inprocess_emulator: str, ecs: Any
) -> None:
    lb_service(ecs, "svc-unhealthy", 1)
    [task] = live_tasks(ecs, "svc-unhealthy")
    report(inprocess_emulator, task["taskArn"], lastStatus="RUNNING", healthStatus="HEALTHY")
    report(inprocess_emulator, task["taskArn"], lastStatus="RUNNING", healthStatus="UNHEALTHY")
    live = live_tasks(ecs, "svc-unhealthy")
    assert task["taskArn"] in {t["taskArn"] for t in live} and len(live) == 2  # replacement first
    [replacement] = [t for t in live if t["taskArn"] != task["taskArn"]]
    report(inprocess_emulator, replacement["taskArn"], lastStatus="RUNNING")
    assert len(live_tasks(ecs, "svc-unhealthy")) == 2  # not judged yet: both kept
    report(inprocess_emulator, replacement["taskArn"], lastStatus="RUNNING", healthStatus="HEALTHY")
    assert [t["taskArn"] for t in live_tasks(ecs, "svc-unhealthy")] == [replacement["taskArn"]]
    [stopped] = ecs.describe_tasks(cluster="c1", tasks=[task["taskArn"]])["tasks"]
    assert stopped["stoppedReason"] == f"Task failed ELB health checks in (target-group {TARGET_GROUP})"
    messages = [
        e["message"]
        for e in ecs.describe_services(cluster="c1", services=["svc-unhealthy"])["services"][0]["events"]
    ]
    assert (
        f"(service svc-unhealthy) has stopped 1 running tasks: (task {task['taskArn'].split('/')[-1]})."
        in messages
    )


def test_when_the_replacement_is_unhealthy_too_one_of_them_stops_and_the_cycle_goes_on(
    inprocess_emulator: str, ecs: Any
) -> None:
    lb_service(ecs, "svc-outage", 1)
    [first] = live_tasks(ecs, "svc-outage")
    report(inprocess_emulator, first["taskArn"], lastStatus="RUNNING", healthStatus="UNHEALTHY")
    [second] = [t for t in live_tasks(ecs, "svc-outage") if t["taskArn"] != first["taskArn"]]
    report(inprocess_emulator, second["taskArn"], lastStatus="RUNNING", healthStatus="UNHEALTHY")
    live = {t["taskArn"] for t in live_tasks(ecs, "svc-outage")}
    # the older unhealthy task went; the other one gets a replacement of its own
    assert first["taskArn"] not in live and second["taskArn"] in live and len(live) == 2


def test_a_recovered_task_keeps_its_place_and_the_spare_replacement_goes(
    inprocess_emulator: str, ecs: Any
) -> None:
    lb_service(ecs, "svc-recovers", 1)
    [task] = live_tasks(ecs, "svc-recovers")
    report(inprocess_emulator, task["taskArn"], lastStatus="RUNNING", healthStatus="UNHEALTHY")
    assert len(live_tasks(ecs, "svc-recovers")) == 2
    report(inprocess_emulator, task["taskArn"], lastStatus="RUNNING", healthStatus="HEALTHY")
    assert [t["taskArn"] for t in live_tasks(ecs, "svc-recovers")] == [task["taskArn"]]


def test_without_room_for_a_replacement_the_unhealthy_task_stops_first(
    inprocess_emulator: str, ecs: Any
) -> None:
    lb_service(
        ecs, "svc-full", 1, deployment_configuration={"maximumPercent": 100, "minimumHealthyPercent": 0}
    )
    [task] = live_tasks(ecs, "svc-full")
    report(inprocess_emulator, task["taskArn"], lastStatus="RUNNING", healthStatus="UNHEALTHY")
    [replacement] = live_tasks(ecs, "svc-full")
    assert replacement["taskArn"] != task["taskArn"]
    [stopped] = ecs.describe_tasks(cluster="c1", tasks=[task["taskArn"]])["tasks"]
    assert stopped["desiredStatus"] == "STOPPED" and "failed ELB health checks" in stopped["stoppedReason"]


def test_an_unhealthy_task_within_its_grace_period_is_kept(inprocess_emulator: str, ecs: Any) -> None:
    lb_service(ecs, "svc-grace", 1, health_check_grace_period_seconds=3600)
    [task] = live_tasks(ecs, "svc-grace")
    report(inprocess_emulator, task["taskArn"], lastStatus="RUNNING", healthStatus="UNHEALTHY")
    assert [t["taskArn"] for t in live_tasks(ecs, "svc-grace")] == [task["taskArn"]]


def test_the_ecs_digest_moves_with_what_the_realizer_reads_and_only_then(
    inprocess_emulator: str, ecs: Any
) -> None:
    """The realizer reads ECS again only when this digest moves: every change it acts on must move it."""
    seen = [ecs_digest(inprocess_emulator)]

    def moved() -> bool:
        seen.append(ecs_digest(inprocess_emulator))
        return seen[-1] != seen[-2]

    assert seen[0] is not None and not moved()  # nothing changed: the same digest
    ecs.create_service(
        cluster="c1", serviceName="svc-digest", taskDefinition="proxy", desiredCount=1, launchType="FARGATE"
    )
    assert moved()
    [task] = live_tasks(ecs, "svc-digest")
    assert not moved()  # reads change nothing
    report(inprocess_emulator, task["taskArn"], lastStatus="RUNNING")
    assert moved()
    report(inprocess_emulator, task["taskArn"], lastStatus="RUNNING", healthStatus="HEALTHY")
    assert moved()
    ecs.update_service(cluster="c1", service="svc-digest", desiredCount=2)
    assert moved() and not moved()
    ecs.stop_task(cluster="c1", task=task["taskArn"], reason="digest test")
    assert moved()
    ecs.update_service(cluster="c1", service="svc-digest", desiredCount=0)
    assert moved()
