"""Calls to the in-process emulator (tests/devenv/conftest.py's `inprocess_emulator`) as its clients make
them: boto3 with the test credentials, a Fargate task definition, and the realizer's task reports to the
control API."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3

CREDS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


def aws_client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, **CREDS)


def fargate_cluster(endpoint: str, cluster: str, container: dict[str, Any]) -> Any:
    """An ECS client, with `cluster` created and a Fargate task definition of one container registered (its
    family is the container's name)."""
    ecs = aws_client(endpoint, "ecs")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=container["name"],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[container],
    )
    return ecs


def post_control(endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST to the emulator's control API (/_devenv/...), as the realizer does."""
    request = urllib.request.Request(
        f"{endpoint}/_devenv/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return dict(json.loads(response.read()))


def report_task(endpoint: str, task_arn: str, **status: Any) -> dict[str, Any]:
    """Report a task's status (lastStatus, healthStatus, exitCode, ...) as the realizer does."""
    return post_control(endpoint, f"ecs/tasks/{task_arn.split('/')[-1]}/status", status)
