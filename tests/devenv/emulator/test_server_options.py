"""Strict mode is on unless DEVENV_CLOUD_STRICT turns it off (or `--no-strict`); moto loads with one boto3
session."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devenv.emulator.server import strict_from_env


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), ("1", True), ("true", True), ("0", False), ("false", False), ("off", False)],
)
def test_strict_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool
) -> None:
    if value is None:
        monkeypatch.delenv("DEVENV_CLOUD_STRICT", raising=False)
    else:
        monkeypatch.setenv("DEVENV_CLOUD_STRICT", value)
    assert strict_from_env() is expected


LOAD_REGIONS = """
import boto3, json
from devenv.emulator.server import load_moto_regions
load_moto_regions()
from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend
print(json.dumps({
    "restored": boto3.Session is boto3.session.Session,
    "moto": sorted(r.name for r in RegionsAndZonesBackend.regions),
    "boto3": sorted(
        name for p in ("aws", "aws-us-gov", "aws-cn") for name in boto3.Session().get_available_regions("ec2", p)
    ),
}))
"""


def test_moto_loaded_with_one_boto3_session_lists_every_partitions_regions() -> None:
    """The shared session is only for moto's import: boto3.Session is boto3's again after it, and moto's
    region list is what separate sessions give (in a new interpreter: moto.ec2 must not be loaded yet)."""
    done = subprocess.run([sys.executable, "-c", LOAD_REGIONS], capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout)
    assert seen["restored"] is True
    assert seen["moto"] == seen["boto3"]
    assert {"us-east-1", "us-gov-west-1", "cn-north-1"} <= set(seen["moto"])
