"""Resolving a target's URL and management token: from a running `devenv up`, a flag, or the AWS stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from devenv.errors import TargetError, UsageError
from devenv.runtime.state import StateDir
from devenv.targets.endpoints import STACK_NAME, TOKEN_SECRET_OUTPUT, URL_OUTPUT, Target, resolve
from stack.names import OUTPUTS
from tests.ports import free_port


@pytest.fixture(autouse=True)
def _no_caller_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVENV_TARGET_URL", raising=False)
    monkeypatch.delenv("MANAGEMENT_TOKEN", raising=False)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[StateDir]:
    """A state dir whose supervisor lock is held (by this process), as during `devenv up`."""
    state = StateDir(tmp_path / "state")
    lock = state.acquire_supervisor_lock()
    state.write({"services": {"proxy": {"url": "http://localhost:18080"}, "redis": {"url": "redis://x"}}})
    (state.run / "secrets.json").write_text(json.dumps({"MANAGEMENT_TOKEN": "generated-token"}))
    yield state
    lock.close()


def test_local_uses_the_running_stack_and_its_generated_token(running: StateDir) -> None:
    endpoint = resolve(Target.local, running)
    assert endpoint.url == "http://localhost:18080"
    assert endpoint.management_token == "generated-token"
    assert "proxy" in endpoint.source
    running.write(
        {"services": {"proxy": {"url": "http://localhost:18080"}, "alb": {"url": "http://127.0.0.1:19090/"}}}
    )
    assert resolve(Target.local, running).url == "http://127.0.0.1:19090"  # the ALB mirror before the proxy


def test_behind_the_alb_mirror_the_token_is_the_stacks_secret_in_the_emulator(running: StateDir) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        emulator = f"http://{host}:{port}"
        boto3.client(
            "secretsmanager",
            endpoint_url=emulator,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ).create_secret(Name="llm-proxy/management-token", SecretString="stack-token")
        running.write(
            {
                "services": {"alb": {"url": "http://localhost:18081"}, "emulator": {"url": emulator}},
                "facts": {"aws_env": {"AWS_ENDPOINT_URL": emulator, "AWS_REGION": "us-east-1"}},
            }
        )
        endpoint = resolve(Target.local, running)
    finally:
        server.stop()
    assert (endpoint.url, endpoint.management_token) == ("http://localhost:18081", "stack-token")


def test_flags_and_environment_win(running: StateDir, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = resolve(Target.local, running, url="http://127.0.0.1:1/", management_token="flag-token")
    assert (endpoint.url, endpoint.management_token, endpoint.source) == (
        "http://127.0.0.1:1",
        "flag-token",
        "--url",
    )
    monkeypatch.setenv("DEVENV_TARGET_URL", "http://127.0.0.1:2")
    monkeypatch.setenv("MANAGEMENT_TOKEN", "env-token")
    assert resolve(Target.local, running).url == "http://127.0.0.1:2"
    assert resolve(Target.local, running).management_token == "env-token"


def test_local_without_a_stack_or_url_is_a_set_up_error(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="`devenv up` is not running") as caught:
        resolve(Target.local, StateDir(tmp_path / "none"))
    assert caught.value.exit_code == 2
    with pytest.raises(UsageError, match="unknown target"):
        resolve("gcp", StateDir(tmp_path))  # type: ignore[arg-type]  # what a bad flag would give


@mock_aws
def test_aws_reads_the_stack_outputs_and_the_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    secrets = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = secrets.create_secret(Name="llm-proxy/management-token", SecretString="aws-token")["ARN"]
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "AlbUrl": {"Value": "http://llm-proxy-alb-123.eu-west-1.elb.amazonaws.com"},
            "ManagementTokenSecretArn": {"Value": arn},
        },
    }
    cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
    cloudformation.create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(template))
    endpoint = resolve(Target.aws, StateDir(tmp_path), region="eu-west-1")
    assert endpoint.url == "http://llm-proxy-alb-123.eu-west-1.elb.amazonaws.com"
    assert endpoint.management_token == "aws-token"
    with pytest.raises(TargetError, match="cannot read the aws target") as caught:
        resolve(Target.aws, StateDir(tmp_path), region="us-west-2")  # no stack there
    assert caught.value.exit_code == 2


def test_the_outputs_read_are_the_stacks_outputs() -> None:
    assert {URL_OUTPUT, TOKEN_SECRET_OUTPUT} <= set(OUTPUTS)
