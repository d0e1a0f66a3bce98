"""`devenv parity` on a template: every resource gets a fate, and an unknown type is `unsupported`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devenv.targets import parity

TEMPLATE = {
    "Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC"},
        "Db": {"Type": "AWS::RDS::DBCluster"},
        "Cache": {"Type": "AWS::ElastiCache::ReplicationGroup"},
        "Secret": {"Type": "AWS::SecretsManager::Secret"},
        "Alarm": {"Type": "AWS::CloudWatch::Alarm"},
    }
}


def test_each_resource_gets_its_fate() -> None:
    entries = {e.logical_id: e for e in parity.fates(TEMPLATE, parity.supported_types())}
    assert entries["Vpc"].fate == "recorded" and "network" in entries["Vpc"].note
    assert entries["Db"].fate == "realized" and "Postgres" in (entries["Db"].realized_by or "")
    assert entries["Cache"].fate == "realized" and "Redis" in (entries["Cache"].realized_by or "")
    assert entries["Secret"].fate == "emulated"
    assert entries["Alarm"].fate == "emulated" and "evaluated as CloudWatch does" in entries["Alarm"].note


@pytest.mark.slow
def test_the_command_exits_non_zero_on_an_unsupported_type(tmp_path: Path) -> None:
    template = {"Resources": {**TEMPLATE["Resources"], "Odd": {"Type": "AWS::Made::Up"}}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "devenv",
            "--state-dir",
            str(tmp_path),
            "parity",
            "--template",
            str(path),
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["unsupported"] == 1
    odd = next(r for r in document["resources"] if r["logical_id"] == "Odd")
    assert odd["fate"] == "unsupported" and odd["type"] == "AWS::Made::Up"
    fates = {r["fate"] for r in document["resources"] if r["logical_id"] != "Odd"}
    assert fates <= {"emulated", "realized", "recorded"}


README = Path(__file__).resolve().parents[3] / "README.md"


def test_every_published_metric_is_described_with_its_approximation_in_readme_and_parity() -> None:
    """`devenv parity` lists the metrics the README's table documents: each name in both, a source and a
    comparison with AWS for each."""
    text = README.read_text()
    table = text[text.index("### CloudWatch metrics") : text.index("### The stack's dashboard")]
    documented = {
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Za-z_/0-9]+)`", row.split("|")[1])
        if not name.startswith("AWS/")  # the namespace, before the first metric of its rows
    }
    listed = {name.strip() for source in parity.METRICS for name in source.metrics.split(",")}
    assert listed == documented
    assert all(source.measured_from and source.versus_aws for source in parity.METRICS)
    assert parity.summary([])["metrics"][0]["namespace"] == "AWS/ApplicationELB"
