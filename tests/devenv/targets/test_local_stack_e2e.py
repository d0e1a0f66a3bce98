"""`devenv up` end to end: the CDK app deployed to the emulator and realized, driven through the AWS API.

On the session's shared stack (tests/conftest.py); each test leaves it as it found it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.local_stack import UP_TIMEOUT_S, Stack, deployed
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def steady_traffic(stack: Stack) -> Iterator[list[int]]:
    """Light traffic through the ALB for the length of a test; yields the status codes seen."""
    codes: list[int] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            codes.append(stack.chat(f"steady {len(codes)}")[0])
            time.sleep(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield codes
    stop.set()
    thread.join()


def test_a_chat_completion_reaches_the_mock_upstream_through_the_alb_and_a_realized_task(
    stack: Stack,
) -> None:
    status, headers = stack.chat()
    assert status == 200
    assert headers.get("Via", "").endswith("Caddy")  # through the ALB mirror
    assert headers["X-Mock-Authorization"].startswith(
        "Bearer sk-devenv"
    )  # the proxy swapped in the project key
    doc = stack.status()
    names = {s["name"] for s in doc["services"]}
    assert {"alb", "aurora", "elasticache", "postgres", "redis", "emulator", "mock-upstream"} <= names
    ecs = {s["name"]: s for s in doc["ecs_services"]}
    assert ecs["proxy"]["desired"] == 1 and ecs["dispatcher"]["desired"] == 1
    status_code, health = stack.health()
    assert status_code == 200 and health["status"] == "ok"


def test_token_create_reuses_the_project_and_prints_exactly_the_documented_json(stack: Stack) -> None:
    first = stack.devenv("token", "create", "--project", "e2e", "--output", "json")
    second = stack.devenv("token", "create", "--project", "e2e", "--output", "json")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert set(one) == {"token", "token_id", "project_id", "expires_at"}
    assert one["project_id"] == two["project_id"] and one["token"] != two["token"]
    assert one["token"].startswith("sk-") and len(one["token"]) == 25


def test_token_list_and_revoke_go_through_the_alb_mirror(stack: Stack) -> None:
    created = stack.devenv("token", "create", "--project", "e2e-revoke", "--output", "json")
    assert created.returncode == 0, created.stderr
    token_id = json.loads(created.stdout)["token_id"]

    def states() -> dict[str, str]:
        listed = stack.devenv("token", "list", "--project", "e2e-revoke", "--output", "json")
        assert listed.returncode == 0, listed.stderr
        return {token["id"]: token["state"] for token in json.loads(listed.stdout)["tokens"]}

    assert states() == {token_id: "active"}
    revoked = stack.devenv("token", "revoke", token_id)
    assert revoked.returncode == 0 and f"revoked token {token_id}" in revoked.stdout, revoked.stderr
    assert states() == {token_id: "revoked"}


def test_autoscaling_false_suspends_the_stacks_scalable_targets_as_an_aws_user_would(stack: Stack) -> None:
    targets = stack.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")
    assert [t["ResourceId"] for t in targets["ScalableTargets"]] == ["service/llm-proxy/proxy"]
    assert targets["ScalableTargets"][0]["SuspendedState"] == {
        "DynamicScalingInSuspended": True,
        "DynamicScalingOutSuspended": True,
        "ScheduledScalingSuspended": True,
    }
    policies = stack.client("application-autoscaling").describe_scaling_policies(ServiceNamespace="ecs")
    assert all(len(p["Alarms"]) == 2 for p in policies["ScalingPolicies"])  # there, but they scale nothing


def test_scaling_1_3_1_and_stop_task_is_routed_around(stack: Stack, steady_traffic: list[int]) -> None:
    ecs = stack.client("ecs")
    cluster, service = stack.proxy_service()
    try:
        scale_1_3_1_stopping_one_of_three(stack)
    finally:  # back to one task even when it failed: the next test starts from the steady state
        ecs.update_service(cluster=cluster, service=service, desiredCount=1)
    assert steady_traffic and all(code == 200 for code in steady_traffic), sorted(set(steady_traffic))


def scale_1_3_1_stopping_one_of_three(stack: Stack) -> None:
    ecs = stack.client("ecs")
    cluster, service = stack.proxy_service()
    ecs.update_service(cluster=cluster, service=service, desiredCount=3)
    wait_for(
        lambda: (
            len(stack.proxy_tasks()) == 3
            and ecs.describe_services(cluster=cluster, services=[service])["services"][0]["runningCount"] == 3
        )
    )
    elbv2 = stack.client("elbv2")
    group = elbv2.describe_target_groups()["TargetGroups"][0]["TargetGroupArn"]
    wait_for(lambda: len(elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]) == 3)

    victim = stack.proxy_tasks()[0]
    ecs.stop_task(cluster=cluster, task=victim, reason="e2e: stop one of three")
    wait_for(lambda: victim not in stack.proxy_tasks() and len(stack.proxy_tasks()) == 3)
    stopped = wait_for(
        lambda: [
            t
            for t in ecs.describe_tasks(cluster=cluster, tasks=[victim])["tasks"]
            if t["lastStatus"] == "STOPPED"
        ]
    )
    assert stopped[0]["stopCode"] == "UserInitiated"
    # as on AWS, a stopped task is listed only when asked for (desiredStatus defaults to RUNNING)
    assert victim not in ecs.list_tasks(cluster=cluster, serviceName=service)["taskArns"]
    assert victim in ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="STOPPED")["taskArns"]

    ecs.update_service(cluster=cluster, service=service, desiredCount=1)
    wait_for(lambda: len(stack.proxy_tasks()) == 1)
    wait_for(lambda: len(elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]) == 1)


def proxy_events(stack: Stack) -> list[dict[str, Any]]:
    ecs = stack.client("ecs")
    cluster, service = stack.proxy_service()
    return list(ecs.describe_services(cluster=cluster, services=[service])["services"][0]["events"])


def test_a_forced_new_deployment_under_steady_traffic_fails_no_request_and_is_logged_as_ecs_logs_it(
    stack: Stack, steady_traffic: list[int]
) -> None:
    ecs = stack.client("ecs")
    cluster, service = stack.proxy_service()
    [before] = stack.proxy_tasks()
    steady = "(service proxy) has reached a steady state."
    # an earlier scale-in may still be draining a task: its events are not this deployment's
    wait_for(
        lambda: proxy_events(stack)[0]["message"] == steady,
        timeout_s=90,
        describe=lambda: [e["message"] for e in proxy_events(stack)[:8]],
    )
    known = {e["id"] for e in proxy_events(stack)}
    ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
    [after] = wait_for(
        lambda: [t for t in stack.proxy_tasks() if t != before] if len(stack.proxy_tasks()) == 1 else None,
        timeout_s=120,
    )
    assert after != before
    switched = len(steady_traffic)
    wait_for(lambda: len(steady_traffic) >= max(switched + 10, 21))  # traffic to the new task too
    assert all(code == 200 for code in steady_traffic), sorted(set(steady_traffic))

    # the deployment's service events, newest first, in AWS's words and order
    new = wait_for(
        lambda: (lambda e: e if e and e[0]["message"] == steady else None)(
            [e for e in proxy_events(stack) if e["id"] not in known]
        ),
        timeout_s=90,
    )
    deployment = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["deployments"][0]
    group = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["loadBalancers"][0][
        "targetGroupArn"
    ]
    assert [e["message"] for e in new] == [
        steady,
        f"(service proxy) (deployment {deployment['id']}) deployment completed.",
        "(service proxy) has begun draining connections on 1 tasks.",
        f"(service proxy) deregistered 1 targets in (target-group {group})",
        f"(service proxy) has stopped 1 running tasks: (task {before.rsplit('/', 1)[-1]}).",
        f"(service proxy) registered 1 targets in (target-group {group})",
        f"(service proxy) has started 1 tasks: (task {after.rsplit('/', 1)[-1]}).",
    ]
    assert deployment["rolloutState"] == "COMPLETED"

    # `devenv status` reads the same events through the ECS API: all in JSON, the newest few in text
    events = stack.status()["ecs_service_events"]
    assert [e["id"] for e in events["proxy"]] == [e["id"] for e in proxy_events(stack)]
    assert (
        events["dispatcher"]
        and events["dispatcher"][0]["message"] == "(service dispatcher) has reached a steady state."
    )
    text = stack.devenv("status")
    assert text.returncode == 0, text.stderr
    assert steady in text.stdout
    assert f"(task {after.rsplit('/', 1)[-1]})" not in text.stdout  # only the newest 3 of each service


def test_a_database_reboot_turns_health_503_then_back_to_200(stack: Stack) -> None:
    rds = stack.client("rds")
    [instance] = rds.describe_db_instances()["DBInstances"]
    rds.reboot_db_instance(DBInstanceIdentifier=instance["DBInstanceIdentifier"])
    # the task's own 503 (through the ALB's fail-open once its health check fails), naming the database
    _, body = wait_for(
        lambda: (lambda r: r if r[0] == 503 and r[1].get("status") == "down" else None)(stack.health()),
        timeout_s=30,
        interval_s=0.05,
    )
    assert body["status"] == "down" and body["checks"]["database"]["status"] != "ok"
    wait_for(lambda: stack.health()[0] == 200, timeout_s=60)
    assert stack.chat("after the database came back")[0] == 200


def test_a_redis_reboot_degrades_health_then_recovers(stack: Stack) -> None:
    cache = stack.client("elasticache")
    member = cache.describe_replication_groups()["ReplicationGroups"][0]["MemberClusters"][0]
    cache.reboot_cache_cluster(CacheClusterId=member, CacheNodeIdsToReboot=["0001"])
    status, body = wait_for(
        lambda: (lambda r: r if r[1].get("status") == "degraded" else None)(stack.health()),
        timeout_s=30,
        interval_s=0.05,
    )
    assert status == 200 and body["checks"]["redis"]["status"] != "ok"
    wait_for(lambda: stack.health()[1].get("status") == "ok", timeout_s=60)
    assert stack.chat("after the cache came back")[0] == 200


def test_down_leaves_nothing_running_and_a_second_up_restores_the_stack_and_keeps_the_data(
    stack: Stack,
) -> None:
    """`down` stops every process; the second `up` restores the saved local cloud (not one CloudFormation
    event, the same stack id and generated secrets) over the data it kept."""
    made = stack.devenv("token", "create", "--project", "e2e-kept", "--output", "json")
    assert made.returncode == 0, made.stderr
    before = deployed(stack)
    pids = [s["pid"] for s in stack.status()["services"] if s["pid"]]
    assert len(pids) >= 9
    done = stack.devenv("down", timeout=180)
    assert done.returncode == 0, done.stderr
    assert not [pid for pid in pids if psutil.pid_exists(pid)]

    up = stack.devenv("up", "-d", timeout=UP_TIMEOUT_S)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "restored from the saved local cloud" in up.stdout
    assert deployed(stack) == before
    again = stack.devenv("token", "create", "--project", "e2e-kept", "--output", "json")
    assert again.returncode == 0, again.stderr
    token = json.loads(again.stdout)
    assert token["project_id"] == json.loads(made.stdout)["project_id"]  # made before `down`, still there
    stack.token = token["token"]
    assert stack.chat("after a second up")[0] == 200
