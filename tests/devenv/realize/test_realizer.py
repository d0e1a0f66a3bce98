"""The realizer with a real emulator and real task processes (the mock upstream as the task's command)."""

from __future__ import annotations

import os
import signal
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from devenv.realize.realizer import Realizer
from devenv.realize.tasks import resolve_value_from
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import Supervisor
from tests.devenv.emulator_calls import aws_client, fargate_cluster
from tests.devenv.realize import realizer_loop
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def realizer(inprocess_emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realizer]:
    supervisor = Supervisor(StateDir(tmp_path_factory.mktemp("realizer-state")), facts={})
    with realizer_loop.running(Realizer(supervisor, inprocess_emulator, "us-east-1", alb=None)) as realizer:
        yield realizer


@pytest.fixture(scope="module")
def ecs(inprocess_emulator: str) -> Any:
    container = {
        "name": "upstream",
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-proxy:local",
        "command": ["mock-upstream"],
        "portMappings": [{"containerPort": 8080}],
        "stopTimeout": 5,
        "essential": True,
    }
    return fargate_cluster(inprocess_emulator, "local", container)


def running_tasks(realizer: Realizer, service: str, count: int) -> Callable[[], list[Any] | None]:
    def check() -> list[Any] | None:
        tasks = [t for t in realizer.tasks.values() if t.service == service and not t.stopping]
        return tasks if len(tasks) == count else None

    return check


def answers(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
        return response.status == 200


def test_service_tasks_run_answer_and_are_reported(realizer: Realizer, ecs: Any) -> None:
    ecs.create_service(
        cluster="local", serviceName="web", taskDefinition="upstream", desiredCount=2, launchType="FARGATE"
    )
    tasks = wait_for(running_tasks(realizer, "web", 2))
    assert all(answers(t.host_port) for t in tasks)

    def counted() -> bool:
        service = ecs.describe_services(cluster="local", services=["web"])["services"][0]
        return bool(service["runningCount"] == 2)

    wait_for(counted)
    described = ecs.describe_tasks(cluster="local", tasks=[t.task_arn for t in tasks])["tasks"]
    assert {t["lastStatus"] for t in described} == {"RUNNING"}


def test_stop_task_stops_the_process_and_a_replacement_starts(realizer: Realizer, ecs: Any) -> None:
    ecs.create_service(
        cluster="local",
        serviceName="svc-stop",
        taskDefinition="upstream",
        desiredCount=1,
        launchType="FARGATE",
    )
    [task] = wait_for(running_tasks(realizer, "svc-stop", 1))
    pid = realizer.supervisor.services[task.process].proc.pid  # type: ignore[union-attr]
    ecs.stop_task(cluster="local", task=task.task_arn, reason="test")
    replacement = wait_for(
        lambda: [t for t in running_tasks(realizer, "svc-stop", 1)() or [] if t.task_arn != task.task_arn]
    )
    assert answers(replacement[0].host_port)
    wait_for(lambda: not psutil.pid_exists(pid))
    stopped = wait_for(
        lambda: [
            t
            for t in ecs.describe_tasks(cluster="local", tasks=[task.task_arn])["tasks"]
            if t["lastStatus"] == "STOPPED"
        ]
    )
    assert stopped[0]["stopCode"] == "UserInitiated"


def test_a_killed_task_is_replaced_like_the_ecs_scheduler_does(realizer: Realizer, ecs: Any) -> None:
    ecs.create_service(
        cluster="local",
        serviceName="svc-kill",
        taskDefinition="upstream",
        desiredCount=1,
        launchType="FARGATE",
    )
    [task] = wait_for(running_tasks(realizer, "svc-kill", 1))
    os.kill(realizer.supervisor.services[task.process].proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
    wait_for(
        lambda: [t for t in running_tasks(realizer, "svc-kill", 1)() or [] if t.task_arn != task.task_arn]
    )
    died = wait_for(
        lambda: [
            t
            for t in ecs.describe_tasks(cluster="local", tasks=[task.task_arn])["tasks"]
            if t["lastStatus"] == "STOPPED"
        ]
    )
    assert died[0]["stopCode"] == "EssentialContainerExited"


def test_update_service_scales_the_processes(realizer: Realizer, ecs: Any) -> None:
    ecs.create_service(
        cluster="local",
        serviceName="svc-scale",
        taskDefinition="upstream",
        desiredCount=1,
        launchType="FARGATE",
    )
    wait_for(running_tasks(realizer, "svc-scale", 1))
    ecs.update_service(cluster="local", service="svc-scale", desiredCount=3)
    tasks = wait_for(running_tasks(realizer, "svc-scale", 3))
    assert len({t.host_port for t in tasks}) == 3
    ecs.update_service(cluster="local", service="svc-scale", desiredCount=1)
    wait_for(running_tasks(realizer, "svc-scale", 1))


def test_secrets_resolve_as_the_ecs_agent_reads_them(inprocess_emulator: str) -> None:
    sm = aws_client(inprocess_emulator, "secretsmanager")
    ssm = aws_client(inprocess_emulator, "ssm")
    arn = sm.create_secret(Name="db-creds", SecretString='{"username": "app", "password": "s3cret"}')["ARN"]
    ssm.put_parameter(Name="/app/log-level", Value="debug", Type="String")
    assert resolve_value_from(f"{arn}:password::", sm, ssm) == "s3cret"
    assert resolve_value_from(arn, sm, ssm) == '{"username": "app", "password": "s3cret"}'
    assert (
        resolve_value_from("arn:aws:ssm:us-east-1:123456789012:parameter/app/log-level", sm, ssm) == "debug"
    )
