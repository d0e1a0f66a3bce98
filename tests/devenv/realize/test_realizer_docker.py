"""The realizer under the docker runtime: an ECS task becomes a container of the task definition's image,
with its environment and secrets resolved from a real emulator, run and stopped through the Docker API.

No daemon runs here (FACTS.md): the recording Engine API stub stands in for Docker, and "running" a
container means listening on the LISTEN_ADDR it was given, as the llmproxy image does.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devenv.realize.realizer import Realizer
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import Supervisor
from tests.devenv.emulator_calls import aws_client, fargate_cluster
from tests.devenv.realize import realizer_loop
from tests.devenv.runtime.engine_stub import EngineStub, serve
from tests.waiting import wait_for

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-proxy:local"


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineStub]:
    listeners: list[socket.socket] = []

    def listen(container: dict[str, Any]) -> None:
        env = dict(item.split("=", 1) for item in container["Config"]["Env"])
        host, port = env["LISTEN_ADDR"].rsplit(":", 1)
        listeners.append(socket.create_server((host, int(port))))

    with serve(tmp_path, images={"llmproxy:local"}) as (stub, docker_host):
        stub.on_start = listen
        monkeypatch.setenv("DOCKER_HOST", docker_host)
        yield stub
    for listener in listeners:
        listener.close()


def test_a_task_runs_as_a_container_of_its_image_and_stops_with_the_service(
    inprocess_emulator: str, engine: EngineStub, tmp_path: Path
) -> None:
    sm = aws_client(inprocess_emulator, "secretsmanager")
    secret = sm.create_secret(Name="mgmt", SecretString='{"token": "t0ken"}')["ARN"]
    container = {
        "name": "proxy",
        "image": IMAGE,
        "command": ["proxy"],
        "environment": [{"name": "LOG_LEVEL", "value": "debug"}],
        "secrets": [{"name": "MANAGEMENT_TOKEN", "valueFrom": f"{secret}:token::"}],
        "portMappings": [{"containerPort": 8080}],
        "stopTimeout": 4,
    }
    ecs = fargate_cluster(inprocess_emulator, "local", container)
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"devenv's CA")
    supervisor = Supervisor(StateDir(tmp_path / "state"), facts={})
    realizer = Realizer(
        supervisor,
        inprocess_emulator,
        "us-east-1",
        alb=None,
        extra_env={"REDIS_CA_FILE": str(ca)},
        runtime="docker",
    )
    try:
        with realizer_loop.running(realizer):
            ecs.create_service(cluster="local", serviceName="proxy", taskDefinition="proxy", desiredCount=1)
            (local,) = wait_for(lambda: list(realizer.tasks.values()))  # added once its port answers
            (spec,) = engine.created()
            env = dict(item.split("=", 1) for item in spec["Env"])
            assert spec["Image"] == "llmproxy:local" and spec["Cmd"] == ["proxy"]
            assert env["MANAGEMENT_TOKEN"] == "t0ken"  # the secret's JSON key, as the ECS agent reads it
            assert env["LOG_LEVEL"] == "debug"
            assert env["LISTEN_ADDR"] == f"127.0.0.1:{local.host_port}"  # where the ALB mirror targets it
            assert env["REDIS_CA_FILE"] == "/tls/ca.crt"
            assert env["DISPATCHER_CONSUMER_NAME"] == local.process
            assert "PATH" not in env  # only the task's variables, not the host's
            assert spec["HostConfig"]["NetworkMode"] == "host"
            running = supervisor.services[local.process]
            assert running.state == "running" and running.spec.argv[1:3] == [
                "-m",
                "devenv.runtime.container_process",
            ]

            def reported_running() -> bool:
                (task,) = ecs.describe_tasks(cluster="local", tasks=[local.task_arn])["tasks"]
                return bool(task["lastStatus"] == "RUNNING")

            wait_for(reported_running)
            ecs.update_service(cluster="local", service="proxy", desiredCount=0)
            wait_for(lambda: not realizer.tasks and not engine.containers)
            (stopped,) = engine.calls("POST", r"/containers/\w+/stop")
            assert "t=4" in stopped  # the task definition's stopTimeout
    finally:
        supervisor.stop_all()
