"""Synthesized LlmProxyStack variants, each synthesized once per session (the first synth loads
aws-cdk-lib into Node and costs seconds; later ones are fast). Every variant is a full `app.synth()`
with cdk.json's feature flags and cdk-nag's AwsSolutions checks, exactly as `devenv synth` runs it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stack.app import STACK_DIR, synthesize

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

TEST_ACCOUNT = "123456789012"
TEST_REGION = "eu-central-1"
IMPORTED_VPC_ID = "vpc-0a1b2c3d4e5f60718"


@dataclass(frozen=True)
class Synth:
    """One synthesized variant: its cloud assembly directory and the parsed template."""

    assembly: Path
    template: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def one(self, resource_type: str) -> dict[str, Any]:
        found = list(self.of_type(resource_type).values())
        assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
        return found[0]

    @property
    def validation_report(self) -> dict[str, Any]:
        return json.loads((self.assembly / "validation-report.json").read_text())


def subnet_id(code: str, index: int) -> str:
    """A well-formed fake subnet id: `code` a (public), b (private), c (isolated); 17 hex digits."""
    return f"subnet-0{code}{index}{'0' * 14}"


def vpc_lookup_context(vpc_id: str) -> dict[str, Any]:
    """The cached answer of `Vpc.from_lookup`, so the import-VPC variant synthesizes offline."""
    key = (
        f"vpc-provider:account={TEST_ACCOUNT}:filter.vpc-id={vpc_id}:region={TEST_REGION}"
        ":returnAsymmetricSubnets=true"
    )

    def subnets(code: str, base: int) -> list[dict[str, str]]:
        return [
            {
                "subnetId": subnet_id(code, index),
                "cidr": f"10.1.{base + index}.0/24",
                "availabilityZone": f"{TEST_REGION}{zone}",
                "routeTableId": f"rtb-0{code}{index}{'0' * 14}",
            }
            for index, zone in enumerate("ab")
        ]

    value = {
        "vpcId": vpc_id,
        "vpcCidrBlock": "10.1.0.0/16",
        "ownerAccountId": TEST_ACCOUNT,
        "availabilityZones": [],
        "subnetGroups": [
            {"name": "Public", "type": "Public", "subnets": subnets("a", 0)},
            {"name": "Private", "type": "Private", "subnets": subnets("b", 10)},
            {"name": "Isolated", "type": "Isolated", "subnets": subnets("c", 20)},
        ],
    }
    return {key: value}


@pytest.fixture(scope="session")
def synth_variant(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Synth]:
    """Synthesize props (a props file and/or prop overrides), cached per distinct input."""
    cache: dict[str, Synth] = {}

    def run(props_file: Path | None = None, **props: Any) -> Synth:
        key = json.dumps([str(props_file), props], sort_keys=True)
        if key not in cache:
            context = dict(props)
            if props.get("existingVpcId"):
                context.update(vpc_lookup_context(props["existingVpcId"]))
            outdir = tmp_path_factory.mktemp("cdk.out")
            assembly = synthesize(props_file, outdir, context)
            template = json.loads((assembly / "LlmProxyStack.template.json").read_text())
            cache[key] = Synth(assembly, template)
        return cache[key]

    return run


@pytest.fixture(scope="session")
def local_synth(synth_variant: Callable[..., Synth]) -> Synth:
    """The local target's props: the default resource set with image tag `local`."""
    return synth_variant(STACK_DIR / "props" / "local.json")


@pytest.fixture
def imported_vpc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", TEST_ACCOUNT)
    monkeypatch.setenv("CDK_DEFAULT_REGION", TEST_REGION)
