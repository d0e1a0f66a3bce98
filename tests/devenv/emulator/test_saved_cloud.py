"""The saved local cloud, on real emulator processes: what one had at its stop (SIGTERM), the next has;
an unusable file is set aside and said, never a crash."""

from __future__ import annotations

import json
import pickle
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from devenv.emulator import saved_cloud
from tests.devenv.conftest import start_emulator, stop_emulator


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def saved_status(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}{saved_cloud.ROUTE}", timeout=60) as response:
        return dict(json.loads(response.read()))


def record_deploy(endpoint: str, assembly: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{endpoint}{saved_cloud.ROUTE}", data=json.dumps({"assembly": assembly}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return dict(json.loads(response.read()))


def test_a_restarted_emulator_has_what_the_stopped_one_had(tmp_path: Path) -> None:
    env = {saved_cloud.ENV: str(tmp_path / "cloud.pickle")}
    process, endpoint = start_emulator(env, tmp_path / "first.log")
    try:
        secret = client("secretsmanager", endpoint).create_secret(Name="db", SecretString="s3cret")
        client("ssm", endpoint).put_parameter(Name="/app/level", Value="debug", Type="String")
        cluster = client("ecs", endpoint).create_cluster(clusterName="apps")["cluster"]["clusterArn"]
        key = client("kms", endpoint).create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
        signature = client("kms", endpoint).sign(
            KeyId=key["KeyId"], Message=b"hello", SigningAlgorithm="RSASSA_PSS_SHA_256"
        )["Signature"]
        assert saved_status(endpoint)["restored"] is False
        assert record_deploy(endpoint, "abc123")["assembly"] == "abc123"
    finally:
        assert stop_emulator(process) == 0
    assert (tmp_path / "cloud.pickle").exists()

    process, endpoint = start_emulator(env, tmp_path / "second.log")
    try:
        status = saved_status(endpoint)
        assert status["restored"] is True and status["assembly"] == "abc123" and status["problem"] is None
        again = client("secretsmanager", endpoint).get_secret_value(SecretId="db")
        assert (again["ARN"], again["SecretString"]) == (secret["ARN"], "s3cret")
        parameter = client("ssm", endpoint).get_parameter(Name="/app/level")["Parameter"]
        assert parameter["Value"] == "debug"
        assert client("ecs", endpoint).list_clusters()["clusterArns"] == [cluster]
        verified = client("kms", endpoint).verify(  # the same private key signed it
            KeyId=key["KeyId"], Message=b"hello", Signature=signature, SigningAlgorithm="RSASSA_PSS_SHA_256"
        )
        assert verified["SignatureValid"] is True
    finally:
        assert stop_emulator(process) == 0


def test_a_corrupt_file_is_set_aside_and_said(tmp_path: Path) -> None:
    saved = tmp_path / "cloud.pickle"
    saved.write_bytes(b"\x80\x05not a pickle at all")
    process, endpoint = start_emulator({saved_cloud.ENV: str(saved)}, tmp_path / "emulator.log")
    try:
        status = saved_status(endpoint)
        assert status["restored"] is False and status["assembly"] is None
        assert "unreadable" in status["problem"] and "set aside" in status["problem"]
        assert (tmp_path / "cloud.unusable").read_bytes() == b"\x80\x05not a pickle at all"
        assert client("ecs", endpoint).list_clusters()["clusterArns"] == []  # it serves, empty
    finally:
        assert stop_emulator(process) == 0
    assert saved.exists()  # its own state replaced the bad file at the stop


def test_a_file_of_another_version_is_set_aside_and_said(tmp_path: Path) -> None:
    saved = tmp_path / "cloud.pickle"
    other = {**saved_cloud.key(), "devenv": "0.0.0-other"}
    saved.write_bytes(pickle.dumps({"key": other, "assembly": "x", "backends": {}, "control": {}}))
    process, endpoint = start_emulator({saved_cloud.ENV: str(saved)}, tmp_path / "emulator.log")
    try:
        status = saved_status(endpoint)
        assert status["restored"] is False
        assert "0.0.0-other" in status["problem"]
    finally:
        assert stop_emulator(process) == 0
