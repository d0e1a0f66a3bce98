"""The saved local cloud, on real emulator processes: what one had at its stop (SIGTERM), the next has;
an unusable file is set aside and said, never a crash."""

from __future__ import annotations

import json
import pickle
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devenv.emulator import saved_cloud
from tests.devenv.conftest import start_emulator, stop_emulator
from tests.devenv.emulator_calls import aws_client, fargate_cluster
from tests.devenv.emulator_calls import report_task as report


def saved_status(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}{saved_cloud.ROUTE}", timeout=60) as response:
        return dict(json.loads(response.read()))


def record_deploy(endpoint: str, stack: str, template: str) -> dict[str, Any]:
    body = json.dumps({"stack": stack, "template": template}).encode()
    request = urllib.request.Request(f"{endpoint}{saved_cloud.ROUTE}", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return dict(json.loads(response.read()))


@pytest.mark.slow
def test_a_restarted_emulator_has_what_the_stopped_one_had(tmp_path: Path) -> None:
    env = {saved_cloud.ENV: str(tmp_path / "cloud.pickle")}
    process, endpoint = start_emulator(env, tmp_path / "first.log")
    try:
        secret = aws_client(endpoint, "secretsmanager").create_secret(Name="db", SecretString="s3cret")
        aws_client(endpoint, "ssm").put_parameter(Name="/app/level", Value="debug", Type="String")
        cluster = aws_client(endpoint, "ecs").create_cluster(clusterName="apps")["cluster"]["clusterArn"]
        key = aws_client(endpoint, "kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")[
            "KeyMetadata"
        ]
        signature = aws_client(endpoint, "kms").sign(
            KeyId=key["KeyId"], Message=b"hello", SigningAlgorithm="RSASSA_PSS_SHA_256"
        )["Signature"]
        assert saved_status(endpoint)["restored"] is False
        assert record_deploy(endpoint, "Web", "abc123")["stacks"] == {"Web": "abc123"}
        assert record_deploy(endpoint, "Jobs", "def456")["stacks"] == {"Web": "abc123", "Jobs": "def456"}
    finally:
        assert stop_emulator(process) == 0
    assert (tmp_path / "cloud.pickle").exists()

    process, endpoint = start_emulator(env, tmp_path / "second.log")
    try:
        status = saved_status(endpoint)
        assert status["restored"] is True and status["problem"] is None
        assert status["stacks"] == {"Web": "abc123", "Jobs": "def456"}
        again = aws_client(endpoint, "secretsmanager").get_secret_value(SecretId="db")
        assert (again["ARN"], again["SecretString"]) == (secret["ARN"], "s3cret")
        parameter = aws_client(endpoint, "ssm").get_parameter(Name="/app/level")["Parameter"]
        assert parameter["Value"] == "debug"
        assert aws_client(endpoint, "ecs").list_clusters()["clusterArns"] == [cluster]
        verified = aws_client(endpoint, "kms").verify(  # the same private key signed it
            KeyId=key["KeyId"], Message=b"hello", Signature=signature, SigningAlgorithm="RSASSA_PSS_SHA_256"
        )
        assert verified["SignatureValid"] is True
    finally:
        assert stop_emulator(process) == 0


@pytest.mark.slow
def test_a_corrupt_file_is_set_aside_and_said(tmp_path: Path) -> None:
    saved = tmp_path / "cloud.pickle"
    saved.write_bytes(b"\x80\x05not a pickle at all")
    process, endpoint = start_emulator({saved_cloud.ENV: str(saved)}, tmp_path / "emulator.log")
    try:
        status = saved_status(endpoint)
        assert status["restored"] is False and status["stacks"] == {}
        assert "unreadable" in status["problem"] and "set aside" in status["problem"]
        assert (tmp_path / "cloud.unusable").read_bytes() == b"\x80\x05not a pickle at all"
        assert aws_client(endpoint, "ecs").list_clusters()["clusterArns"] == []  # it serves, empty
    finally:
        assert stop_emulator(process) == 0
    assert saved.exists()  # its own state replaced the bad file at the stop


@pytest.mark.slow
def test_a_file_of_another_version_is_set_aside_and_said(tmp_path: Path) -> None:
    saved = tmp_path / "cloud.pickle"
    other = {**saved_cloud.key(), "devenv": "0.0.0-other"}
    saved.write_bytes(pickle.dumps({"key": other, "stacks": {}, "backends": {}, "control": {}}))
    process, endpoint = start_emulator({saved_cloud.ENV: str(saved)}, tmp_path / "emulator.log")
    try:
        status = saved_status(endpoint)
        assert status["restored"] is False
        assert "0.0.0-other" in status["problem"]
    finally:
        assert stop_emulator(process) == 0


@pytest.mark.slow
def test_the_tasks_stop_with_the_cloud_and_new_ones_start_after_it(tmp_path: Path) -> None:
    """At a stop the tasks' processes are gone (the realizer stopped them): the saved cloud has them
    STOPPED, and the scheduler of the restored one starts their replacements."""
    env = {saved_cloud.ENV: str(tmp_path / "cloud.pickle")}
    process, endpoint = start_emulator(env, tmp_path / "first.log")
    try:
        container = {"name": "proxy", "image": "llmproxy:local", "command": ["proxy"], "essential": True}
        ecs = fargate_cluster(endpoint, "c1", container)
        ecs.create_service(
            cluster="c1", serviceName="svc", taskDefinition="proxy", desiredCount=1, launchType="FARGATE"
        )
        [task] = ecs.list_tasks(cluster="c1", serviceName="svc", desiredStatus="RUNNING")["taskArns"]
        report(endpoint, task, lastStatus="RUNNING", healthStatus="HEALTHY")
    finally:
        assert stop_emulator(process) == 0

    process, endpoint = start_emulator(env, tmp_path / "second.log")
    try:
        ecs = aws_client(endpoint, "ecs")
        [stopped] = ecs.describe_tasks(cluster="c1", tasks=[task])["tasks"]
        assert (stopped["lastStatus"], stopped["desiredStatus"]) == ("STOPPED", "STOPPED")
        assert stopped["stoppedReason"] == saved_cloud.STOPPED_REASON
        [replacement] = ecs.list_tasks(cluster="c1", serviceName="svc", desiredStatus="RUNNING")["taskArns"]
        assert replacement != task
    finally:
        assert stop_emulator(process) == 0
