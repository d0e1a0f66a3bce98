"""The realizer with a real emulator and real task processes (the mock upstream as the task's command)."""

from __future__ import annotations

import json
import os
import signal
import urllib.parse
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


def locust_definition(
    ecs: Any, family: str, command: list[str], ports: list[int], env: dict[str, str]
) -> None:
    """A task definition of the loadtest image (its ECR repository in the load generator stack)."""
    locustfiles = "/app/loadtests/locustfile.py,/app/loadtests/shapes.py"
    ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "locust",
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-proxy-loadtest:local",
                "command": ["-f", locustfiles, *command],
                "portMappings": [{"containerPort": port} for port in ports],
                "environment": [{"name": k, "value": v} for k, v in env.items()],
                "stopTimeout": 5,
                "essential": True,
            }
        ],
    )


def master_stats(port: int) -> dict[str, Any] | None:
    """A Locust master's /stats/requests; None while its web UI is not up."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/requests", timeout=2) as response:
            return dict(json.loads(response.read()))
    except OSError:
        return None


@pytest.mark.slow
def test_locust_workers_find_their_master_through_cloud_map(realizer: Realizer, ecs: Any) -> None:
    """The loadtest image runs as Locust from this checkout; the workers' `master.loadgen.local:5557`
    is the realized master's host and port, so they connect to it (its web API counts them)."""
    cloud_map = aws_client(realizer.endpoint, "servicediscovery")
    cloud_map.create_private_dns_namespace(Name="loadgen.local", Vpc="vpc-local")
    namespace = next(n for n in cloud_map.list_namespaces()["Namespaces"] if n["Name"] == "loadgen.local")
    registry = cloud_map.create_service(Name="master", NamespaceId=namespace["Id"])["Service"]["Arn"]
    env = {"LOCUST_HOST": "http://127.0.0.1:9"}
    locust_definition(
        ecs,
        "locust-master",
        ["--master", "--master-bind-port", "5557", "--web-port", "8089"],
        [8089, 5557],
        env,
    )
    locust_definition(
        ecs,
        "locust-worker",
        ["--worker", "--master-host", "master.loadgen.local", "--master-port", "5557"],
        [],
        env,
    )
    ecs.create_service(
        cluster="local",
        serviceName="locust-master",
        taskDefinition="locust-master",
        desiredCount=1,
        launchType="FARGATE",
        serviceRegistries=[{"registryArn": registry}],
    )
    ecs.create_service(
        cluster="local",
        serviceName="locust-worker",
        taskDefinition="locust-worker",
        desiredCount=2,
        launchType="FARGATE",
    )
    [master] = wait_for(running_tasks(realizer, "locust-master", 1))
    workers = wait_for(running_tasks(realizer, "locust-worker", 2))
    assert realizer.discovered["master.loadgen.local"] == "locust-master"
    assert set(master.host_ports) == {8089, 5557} and master.host_port == master.host_ports[8089]
    for worker in workers:
        argv = realizer.supervisor.services[worker.process].spec.argv
        assert argv[argv.index("--master-host") + 1] == "127.0.0.1"
        assert argv[argv.index("--master-port") + 1] == str(master.host_ports[5557])
        assert not any("/app/" in argument for argument in argv)

    stats = wait_for(lambda: (s := master_stats(master.host_ports[8089])) and s["worker_count"] == 2 and s)
    assert stats["state"] == "ready"
    for service in ("locust-worker", "locust-master"):
        ecs.update_service(cluster="local", service=service, desiredCount=0)
    wait_for(lambda: not [t for t in realizer.tasks.values() if t.service.startswith("locust-")])


@pytest.mark.slow
def test_a_realized_master_writes_its_run_to_the_results_bucket(realizer: Realizer, ecs: Any) -> None:
    """A run swarmed and stopped through the master's web API (as an operator or `devenv loadtest` would)
    lands in the bucket under runs/: the task's AWS calls go to the emulator."""
    s3 = aws_client(realizer.endpoint, "s3")
    s3.create_bucket(Bucket="loadgen-results")
    ecs.create_service(
        cluster="local", serviceName="target", taskDefinition="upstream", desiredCount=1, launchType="FARGATE"
    )
    [target] = wait_for(running_tasks(realizer, "target", 1))
    env = {"LOADTEST_RESULTS_BUCKET": "loadgen-results", "LOADTEST_API_KEY": "sk-direct"}
    locust_definition(ecs, "locust-solo", ["--web-port", "8089"], [8089], env)
    ecs.create_service(
        cluster="local",
        serviceName="locust-solo",
        taskDefinition="locust-solo",
        desiredCount=1,
        launchType="FARGATE",
    )
    [master] = wait_for(running_tasks(realizer, "locust-solo", 1))
    web = f"http://127.0.0.1:{master.host_ports[8089]}"
    wait_for(lambda: master_stats(master.host_ports[8089]))
    form = urllib.parse.urlencode(
        {"user_count": 2, "spawn_rate": 2, "host": f"http://127.0.0.1:{target.host_port}"}
    ).encode()
    with urllib.request.urlopen(f"{web}/swarm", data=form, timeout=5) as response:
        assert json.loads(response.read())["success"] is True
    wait_for(lambda: (s := master_stats(master.host_ports[8089])) and s["total_rps"] > 0)
    with urllib.request.urlopen(f"{web}/stop", data=b"", timeout=5) as response:
        assert response.status == 200

    def written() -> list[str]:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="loadgen-results").get("Contents", [])]
        return keys if any(k.endswith("/summary.json") for k in keys) else []

    keys = wait_for(written)
    assert all(k.startswith("runs/") for k in keys) and len({k.rsplit("/", 1)[0] for k in keys}) == 1
    summary_key = next(k for k in keys if k.endswith("/summary.json"))
    summary = json.loads(s3.get_object(Bucket="loadgen-results", Key=summary_key)["Body"].read())
    assert (
        summary["mode"] == "direct"
        and summary["requests"] > 0
        and summary["target"].endswith(str(target.host_port))
    )
    for service in ("locust-solo", "target"):
        ecs.update_service(cluster="local", service=service, desiredCount=0)
    wait_for(lambda: not [t for t in realizer.tasks.values() if t.service in ("locust-solo", "target")])


def test_a_task_that_cannot_run_here_is_stopped_and_told_once(
    realizer: Realizer, ecs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ecs.register_task_definition(
        family="sidecar",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "sidecar", "image": "public.ecr.aws/example/sidecar:1", "essential": True}
        ],
    )
    caplog.set_level("WARNING", logger="devenv.realizer")
    ecs.create_service(
        cluster="local",
        serviceName="svc-sidecar",
        taskDefinition="sidecar",
        desiredCount=1,
        launchType="FARGATE",
    )

    def stopped() -> list[dict[str, Any]]:
        arns = ecs.list_tasks(cluster="local", serviceName="svc-sidecar", desiredStatus="STOPPED")["taskArns"]
        return ecs.describe_tasks(cluster="local", tasks=arns)["tasks"] if len(arns) >= 2 else []

    tasks = wait_for(stopped)  # the scheduler replaced the first one, which could not start either
    assert all(t["stoppedReason"].startswith("CannotStartContainerError") for t in tasks)
    assert "no local entry point" in tasks[0]["stoppedReason"]
    told = [r for r in caplog.records if "svc-sidecar" in r.getMessage()]
    assert len(told) == 1, [r.getMessage() for r in told]
    ecs.update_service(cluster="local", service="svc-sidecar", desiredCount=0)
