"""The real stack's HTTPS + imported-VPC variant, deployed to the emulator through CloudFormation
(the warm path `devenv up` uses), then deleted without leaks. The default variant goes through the
CDK CLI in tests/devenv/cli/test_deploy.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devenv.targets import leaks
from devenv.targets.local import client, delete_stack, deploy_template_report
from stack.app import STACK_DIR
from tests.stack.conftest import IMPORTED_VPC_ID, TEST_ACCOUNT, TEST_REGION, vpc_lookup_context

pytestmark = pytest.mark.slow  # synthesizes and deploys a variant of the whole app

HTTPS_IMPORTED_VPC = {
    "imageTag": "v1",
    "domainName": "api.example.com",
    "hostedZoneId": "Z0123456789ABCDEFGHIJ",
    "hostedZoneName": "example.com",
    "existingVpcId": IMPORTED_VPC_ID,
    "deletionProtection": False,
}


def synthesize(outdir: Path) -> Path:
    """A full synth in a child process (as devenv runs it), with the VPC lookup answered from context."""
    context = {**HTTPS_IMPORTED_VPC, **vpc_lookup_context(IMPORTED_VPC_ID)}
    script = (
        "import json, sys\nfrom pathlib import Path\nfrom stack.app import synthesize\n"
        "synthesize(None, Path(sys.argv[1]), json.loads(sys.argv[2]))\n"
    )
    env = {**os.environ, "CDK_DEFAULT_ACCOUNT": TEST_ACCOUNT, "CDK_DEFAULT_REGION": TEST_REGION}
    done = subprocess.run(
        [sys.executable, "-c", script, str(outdir), json.dumps(context)],
        cwd=Path(__file__).resolve().parents[3],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return outdir / "LlmProxyStack.template.json"


def test_https_with_an_imported_vpc_deploys_and_deletes_cleanly(emulator: str, tmp_path: Path) -> None:
    template_path = synthesize(tmp_path / "assembly")
    template = json.loads(template_path.read_text())
    types = {r["Type"] for r in template["Resources"].values()}
    assert "AWS::CertificateManager::Certificate" in types and "AWS::EC2::VPC" not in types
    report = deploy_template_report(
        emulator, template_path, "LlmProxyStack", region=TEST_REGION, stack_dir=STACK_DIR
    )
    assert report.status == "CREATE_COMPLETE"
    assert set(template["Outputs"]) <= set(report.outputs)
    assert report.outputs["AlbUrl"].startswith("https://")
    acm = client("acm", emulator, TEST_REGION)
    [certificate] = acm.list_certificates()["CertificateSummaryList"]
    assert certificate["DomainName"] == "api.example.com"
    listeners = client("elbv2", emulator, TEST_REGION).describe_listeners(
        LoadBalancerArn=client("elbv2", emulator, TEST_REGION).describe_load_balancers()["LoadBalancers"][0][
            "LoadBalancerArn"
        ]
    )["Listeners"]
    assert {listener["Port"] for listener in listeners} >= {443}
    held = delete_stack(emulator, "LlmProxyStack", TEST_REGION)
    assert len(held) == len(template["Resources"])
    assert leaks.leaked(lambda service: client(service, emulator, TEST_REGION), held) == []
