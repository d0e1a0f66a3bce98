"""`devenv deploy/destroy` refuse clearly, before any synth, when they cannot work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ports import free_port


def devenv(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "devenv", "--state-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, **(env or {})},
        check=False,
    )


def test_a_local_deploy_without_the_emulator_says_to_run_devenv_up(tmp_path: Path) -> None:
    done = devenv(tmp_path, "deploy", "--target", "local", env={"DEVENV_EMULATOR_PORT": str(free_port())})
    assert done.returncode == 7, done.stderr
    assert "not answering" in done.stderr and "devenv up" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cdk").exists()  # nothing synthesized


def test_bad_flags_are_usage_errors(tmp_path: Path) -> None:
    done = devenv(tmp_path, "deploy", "-c", "noequals")
    assert done.returncode == 2 and "KEY=VALUE" in done.stderr
    done = devenv(tmp_path, "deploy", "--props", str(tmp_path / "absent.json"))
    assert done.returncode == 2 and "absent.json" in done.stderr
    done = devenv(tmp_path, "deploy", "--target", "local", "--dry-run")
    assert done.returncode == 2 and "--dry-run" in done.stderr


def test_an_aws_deploy_without_credentials_fails_clearly(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_REGION": "eu-central-1",
    }
    done = devenv(tmp_path, "deploy", "--target", "aws", "--yes", env=env)
    assert done.returncode == 1, done.stderr
    assert "no AWS credentials" in done.stderr and "Traceback" not in done.stderr


def test_an_aws_deploy_asks_first_and_json_output_needs_yes(tmp_path: Path) -> None:
    done = devenv(
        tmp_path, "deploy", "--target", "aws", "--output", "json", env={"AWS_REGION": "eu-central-1"}
    )
    assert done.returncode == 2 and "--yes" in done.stderr
    assert done.stdout == ""


def test_an_unknown_region_flag_is_refused_before_anything_runs(tmp_path: Path) -> None:
    done = devenv(tmp_path, "deploy", "--target", "local", "--region", "mars-north-9")
    assert done.returncode == 2, done.stderr
    assert "--region mars-north-9: not an AWS region" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "cdk").exists()  # nothing synthesized


@pytest.mark.parametrize(
    "command",
    [("deploy", "--dry-run"), ("deploy", "--yes"), ("destroy", "--yes")],
    ids=["dry-run", "deploy", "destroy"],
)
def test_without_credentials_the_aws_target_refuses_before_any_synth(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = {
        "HOME": str(tmp_path),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_REGION": "eu-central-1",
    }
    done = devenv(tmp_path, command[0], "--target", "aws", *command[1:], env=env)
    assert done.returncode == 1, done.stderr
    assert "no AWS credentials found" in done.stderr and "aws sso login" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cdk").exists()  # nothing synthesized
