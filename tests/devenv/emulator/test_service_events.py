"""ECS service events and task listing as AWS has them, through boto3 against a real emulator server.

The realizer's reports (task status, target events) are posted to the control API by hand here; the
whole stack's events are checked end to end in tests/devenv/targets/test_local_stack_e2e.py.
"""

from __future__ import annotations

import json
import re
import urllib.error
from typing import Any

import pytest

from tests.devenv.emulator_calls import fargate_cluster, post_control
from tests.devenv.emulator_calls import report_task as report

TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1"


def target_event(inprocess_emulator: str, task_arn: str, event: str, **extra: Any) -> None:
    body = {"event": event, "targetGroupArn": TARGET_GROUP, "port": 40001, **extra}
    post_control(inprocess_emulator, f"ecs/tasks/{task_arn.split('/')[-1]}/target-event", body)


@pytest.fixture(scope="module")
def ecs(inprocess_emulator: str) -> Any:
    container = {"name": "proxy", "image": "llmproxy:local", "command": ["proxy"], "essential": True}
    return fargate_cluster(inprocess_emulator, "c1", container)


def create_service(ecs: Any, name: str) -> str:
    """A service behind the target group, desired 1; returns its one task's ARN."""
    balancer = {"targetGroupArn": TARGET_GROUP, "containerName": "proxy", "containerPort": 8080}
    ecs.create_service(
        cluster="c1",
        serviceName=name,
        taskDefinition="proxy",
        desiredCount=1,
        launchType="FARGATE",
        loadBalancers=[balancer],
    )
    [arn] = ecs.list_tasks(cluster="c1", serviceName=name)["taskArns"]
    return str(arn)


def events(ecs: Any, service: str) -> list[dict[str, Any]]:
    return list(ecs.describe_services(cluster="c1", services=[service])["services"][0]["events"])


def task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def test_a_deploy_and_a_rolling_deployment_read_like_aws_newest_first(
    inprocess_emulator: str, ecs: Any
) -> None:
    first = create_service(ecs, "web")
    report(inprocess_emulator, first, lastStatus="RUNNING")
    target_event(inprocess_emulator, first, "registered")
    report(inprocess_emulator, first, lastStatus="RUNNING", healthStatus="HEALTHY")
    initial = ecs.describe_services(cluster="c1", services=["web"])["services"][0]["deployments"][0]["id"]

    ecs.update_service(cluster="c1", service="web", forceNewDeployment=True)
    [second] = [a for a in ecs.list_tasks(cluster="c1", serviceName="web")["taskArns"] if a != first]
    report(inprocess_emulator, second, lastStatus="RUNNING")
    target_event(inprocess_emulator, second, "registered")
    report(
        inprocess_emulator, second, lastStatus="RUNNING", healthStatus="HEALTHY"
    )  # the old task is retired now
    target_event(inprocess_emulator, first, "deregistered")
    report(inprocess_emulator, first, lastStatus="STOPPED", exitCode=0)
    rolled = ecs.describe_services(cluster="c1", services=["web"])["services"][0]["deployments"][0]
    assert rolled["id"] != initial and rolled["rolloutState"] == "COMPLETED"

    seen = events(ecs, "web")
    assert [e["message"] for e in seen] == [
        "(service web) has reached a steady state.",
        f"(service web) (deployment {rolled['id']}) deployment completed.",
        "(service web) has begun draining connections on 1 tasks.",
        f"(service web) deregistered 1 targets in (target-group {TARGET_GROUP})",
        f"(service web) has stopped 1 running tasks: (task {task_id(first)}).",
        f"(service web) registered 1 targets in (target-group {TARGET_GROUP})",
        f"(service web) has started 1 tasks: (task {task_id(second)}).",
        "(service web) has reached a steady state.",
        f"(service web) (deployment {initial}) deployment completed.",
        f"(service web) registered 1 targets in (target-group {TARGET_GROUP})",
        f"(service web) has started 1 tasks: (task {task_id(first)}).",
    ]
    times = [e["createdAt"] for e in seen]
    assert times == sorted(times, reverse=True)
    assert len({e["id"] for e in seen}) == len(seen)
    assert all(re.fullmatch(r"[0-9a-f-]{36}", e["id"]) for e in seen)


def test_the_deployment_waits_for_old_tasks_to_stop_before_it_completes(
    inprocess_emulator: str, ecs: Any
) -> None:
    old = create_service(ecs, "slow")
    report(inprocess_emulator, old, lastStatus="RUNNING", healthStatus="HEALTHY")
    ecs.update_service(cluster="c1", service="slow", forceNewDeployment=True)
    [new] = [a for a in ecs.list_tasks(cluster="c1", serviceName="slow")["taskArns"] if a != old]
    report(inprocess_emulator, new, lastStatus="RUNNING", healthStatus="HEALTHY")
    service = ecs.describe_services(cluster="c1", services=["slow"])["services"][0]
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"  # the old task is still draining
    assert "steady state" not in service["events"][0]["message"]
    report(inprocess_emulator, old, lastStatus="STOPPED", exitCode=0)
    assert events(ecs, "slow")[0]["message"] == "(service slow) has reached a steady state."


def test_an_alb_event_after_the_steady_state_is_followed_by_the_steady_state_again(
    inprocess_emulator: str, ecs: Any
) -> None:
    task = create_service(ecs, "late")
    report(inprocess_emulator, task, lastStatus="RUNNING", healthStatus="HEALTHY")
    assert events(ecs, "late")[0]["message"] == "(service late) has reached a steady state."
    target_event(inprocess_emulator, task, "registered")  # the realizer's report, after the counts held
    assert [e["message"] for e in events(ecs, "late")[:3]] == [
        "(service late) has reached a steady state.",
        f"(service late) registered 1 targets in (target-group {TARGET_GROUP})",
        "(service late) has reached a steady state.",
    ]


def test_scaling_out_and_in_and_an_unhealthy_target(inprocess_emulator: str, ecs: Any) -> None:
    first = create_service(ecs, "scaled")
    report(inprocess_emulator, first, lastStatus="RUNNING", healthStatus="HEALTHY")
    ecs.update_service(cluster="c1", service="scaled", desiredCount=3)
    started = events(ecs, "scaled")[0]["message"]
    assert re.fullmatch(
        r"\(service scaled\) has started 2 tasks: \(task [0-9a-f-]+\) \(task [0-9a-f-]+\)\.", started
    )
    running = [a for a in ecs.list_tasks(cluster="c1", serviceName="scaled")["taskArns"] if a != first]
    report(
        inprocess_emulator, running[0], lastStatus="RUNNING", healthStatus="HEALTHY"
    )  # the other stays pending
    ecs.update_service(cluster="c1", service="scaled", desiredCount=1)
    newest = [e["message"] for e in events(ecs, "scaled")[:2]]
    assert newest == [
        "(service scaled) stopped 1 pending tasks.",
        f"(service scaled) has stopped 1 running tasks: (task {task_id(running[0])}).",
    ]

    target_event(
        inprocess_emulator, first, "unhealthy", reason="Health checks failed with these codes: [503]"
    )
    assert events(ecs, "scaled")[0]["message"] == (
        f"(service scaled) (task {task_id(first)}) (port 40001) is unhealthy in (target-group {TARGET_GROUP}) "
        "due to (reason Health checks failed with these codes: [503])."
    )


def test_events_are_capped_at_the_newest_100(inprocess_emulator: str, ecs: Any) -> None:
    task = create_service(ecs, "busy")
    for _ in range(60):
        target_event(inprocess_emulator, task, "deregistered")  # two events each
    seen = events(ecs, "busy")
    assert len(seen) == 100
    assert "has started 1 tasks" not in " ".join(e["message"] for e in seen)  # the oldest went first
    assert seen[0]["message"] == "(service busy) has begun draining connections on 1 tasks."


def test_list_tasks_lists_running_tasks_unless_asked_for_stopped_ones(
    inprocess_emulator: str, ecs: Any
) -> None:
    stopped = create_service(ecs, "listed")
    report(inprocess_emulator, stopped, lastStatus="RUNNING")
    ecs.stop_task(cluster="c1", task=stopped, reason="test")
    report(inprocess_emulator, stopped, lastStatus="STOPPED", exitCode=0)
    [running] = ecs.list_tasks(cluster="c1", serviceName="listed")["taskArns"]
    assert running != stopped
    assert stopped not in ecs.list_tasks(cluster="c1")["taskArns"]
    assert ecs.list_tasks(cluster="c1", serviceName="listed", desiredStatus="STOPPED")["taskArns"] == [
        stopped
    ]
    assert ecs.list_tasks(cluster="c1", serviceName="listed", desiredStatus="RUNNING")["taskArns"] == [
        running
    ]


@pytest.mark.parametrize(
    ("task", "body", "code"),
    [
        ("any", {"event": "exploded", "targetGroupArn": TARGET_GROUP, "port": 1}, 400),
        ("any", {"event": "registered", "port": 1}, 400),
        ("any", {"event": "registered", "targetGroupArn": TARGET_GROUP, "port": "eighty"}, 400),
        ("no-such-task", {"event": "registered", "targetGroupArn": TARGET_GROUP, "port": 1}, 404),
    ],
)
def test_a_bad_target_event_is_refused(
    inprocess_emulator: str, task: str, body: dict[str, Any], code: int
) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        post_control(inprocess_emulator, f"ecs/tasks/{task}/target-event", body)
    assert refused.value.code == code
    assert json.loads(refused.value.read())["error"]


def test_status_reads_every_services_events_through_the_ecs_api(inprocess_emulator: str, ecs: Any) -> None:
    from devenv.errors import NotRunningError
    from devenv.targets.local import ecs_service_events
    from tests.ports import free_port

    for n in range(12):  # more than one page of list_services
        create_service(ecs, f"paged-{n:02d}")
    found = ecs_service_events(inprocess_emulator, "us-east-1")
    assert {f"paged-{n:02d}" for n in range(12)} <= set(found)
    assert [e["id"] for e in found["paged-11"]] == [e["id"] for e in events(ecs, "paged-11")]
    assert found["paged-11"][0]["message"].startswith("(service paged-11) has started 1 tasks: (task ")
    with pytest.raises(NotRunningError) as silent:
        ecs_service_events(f"http://127.0.0.1:{free_port()}", "us-east-1")
    assert "could not read the ECS service events" in silent.value.message
