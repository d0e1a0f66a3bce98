"""The LocalStack adapter: what it hands the CDK CLI, and a clear refusal when LocalStack cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.errors import MissingDependencyError
from devenv.targets import localstack
from tests.devenv.runtime.engine_stub import serve


def test_it_sets_the_variables_cdklocal_would() -> None:
    env = localstack.cdklocal_env("http://localhost:4566", "eu-central-1")
    assert env["AWS_ENDPOINT_URL"] == "http://localhost:4566"
    assert env["AWS_ENDPOINT_URL_S3"] == "http://s3.localhost.localstack.cloud:4566"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("test", "test")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-central-1"


def test_the_endpoint_follows_the_environment() -> None:
    assert localstack.endpoint({}) == "http://localhost:4566"
    assert localstack.endpoint({"LOCALSTACK_ENDPOINT": "http://localhost:4999"}) == "http://localhost:4999"
    assert localstack.cdklocal_env("http://localhost:4999", "us-east-1")["AWS_ENDPOINT_URL_S3"].endswith(
        ":4999"
    )


@pytest.mark.parametrize(
    ("daemon", "environ", "expected"),
    [
        (False, {"LOCALSTACK_AUTH_TOKEN": "t"}, ["no Docker daemon"]),
        (True, {}, ["LOCALSTACK_AUTH_TOKEN is not set"]),
        (False, {}, ["no Docker daemon", "LOCALSTACK_AUTH_TOKEN"]),
    ],
)
def test_it_refuses_clearly_without_docker_or_token(
    daemon: bool, environ: dict[str, str], expected: list[str]
) -> None:
    with pytest.raises(MissingDependencyError) as caught:
        localstack.require_localstack(environ, daemon=daemon)
    assert all(part in caught.value.message for part in expected)
    assert "--emulator moto" in (caught.value.hint or "")


def test_it_accepts_a_daemon_and_a_token() -> None:
    localstack.require_localstack({"LOCALSTACK_AUTH_TOKEN": "t"}, daemon=True)


def test_the_daemon_probe_tells_an_answering_daemon_from_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No daemon: False at once (not a hang, not an exception); one that answers _ping: True."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing-listens.sock")
    assert localstack.docker_daemon_answers() is False
    with serve(tmp_path, images=set()) as (engine, host):
        monkeypatch.setenv("DOCKER_HOST", host)
        assert localstack.docker_daemon_answers() is True
    assert engine.calls("GET", "/_ping")
