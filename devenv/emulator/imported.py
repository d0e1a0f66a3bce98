"""A VPC (or hosted zone) the stack imports exists in the account, not in the stack: record it here.

The template then names the VPC and its subnets by literal id. Before such a stack is created, every such
id missing from the emulator's EC2 is created there under that very id (moto draws ids at random, so the
draw is pinned for the call), with made-up CIDRs. Security groups, target groups and subnet groups that
reference it then deploy; deleting the stack leaves the imported VPC, as on AWS. An imported Route 53
hosted zone (a record set naming a literal HostedZoneId) is recorded the same way.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.ec2.models import ec2_backends
from moto.route53.models import HostedZoneIdentifier, route53_backends
from moto.utilities.id_generator import moto_id_manager

VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
IMPORTED_TAG = "devenv:imported"
_lock = threading.Lock()


def literal_ids(node: Any, pattern: re.Pattern[str]) -> list[str]:
    """Every string in the node matching the pattern, in order of first appearance."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str) and pattern.match(value) and value not in found:
            found.append(value)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(node)
    return found


# The id the next VPC or subnet this thread creates takes, while one is recorded (moto draws at random).
_next_id = threading.local()


def drawing_pinned_id(kind: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """moto's random id for `kind` ("vpc" or "subnet"), unless `_pinned` names the next one."""

    def patch(original: Callable[[], str]) -> Callable[[], str]:
        def draw() -> str:
            pinned: str | None = getattr(_next_id, kind, None)
            setattr(_next_id, kind, None)
            return pinned if pinned is not None else original()

        return draw

    return patch


@contextmanager
def _pinned(kind: str, value: str) -> Iterator[None]:
    setattr(_next_id, kind, value)
    try:
        yield
    finally:
        setattr(_next_id, kind, None)


def record_imported_network(account_id: str, region_name: str, template: dict[str, Any]) -> list[str]:
    """Create the VPCs and subnets the template names but the emulator lacks; returns their ids."""
    resources = template.get("Resources") or {}
    ec2 = ec2_backends[account_id][region_name]
    created: list[str] = []
    with _lock:
        vpc_ids = literal_ids(resources, VPC_ID)
        for index, vpc_id in enumerate(vpc_ids):
            if vpc_id in ec2.vpcs:
                continue
            with _pinned("vpc", vpc_id):
                ec2.create_vpc(f"10.{200 + index % 50}.0.0/16", tags=[{"Key": IMPORTED_TAG, "Value": "true"}])
            created.append(vpc_id)
        subnet_ids = [s for s in literal_ids(resources, SUBNET_ID) if not _subnet_exists(ec2, s)]
        if subnet_ids and vpc_ids:
            vpc = ec2.vpcs[vpc_ids[0]]
            network = vpc.cidr_block.rsplit(".", 2)[0]
            zones = itertools.cycle("ab")
            used = {s.cidr_block for s in ec2.describe_subnets(filters={"vpc-id": vpc.id})}
            third = (n for n in range(256) if f"{network}.{n}.0/24" not in used)
            for subnet_id in subnet_ids:
                with _pinned("subnet", subnet_id):
                    ec2.create_subnet(
                        vpc.id,
                        f"{network}.{next(third)}.0/24",
                        availability_zone=f"{region_name}{next(zones)}",
                        tags={"subnet": {IMPORTED_TAG: "true"}},
                    )
                created.append(subnet_id)
    return created


def _subnet_exists(ec2: Any, subnet_id: str) -> bool:
    return any(subnet_id in by_id for by_id in ec2.subnets.values())


def record_imported_zones(account_id: str, template: dict[str, Any]) -> list[str]:
    """Create the hosted zones record sets name by literal id, when the emulator lacks them."""
    route53 = route53_backends[account_id]["aws"]
    created: list[str] = []
    with _lock:
        for resource in (template.get("Resources") or {}).values():
            if not isinstance(resource, dict) or resource.get("Type") != "AWS::Route53::RecordSet":
                continue
            properties = resource.get("Properties") or {}
            zone_id = properties.get("HostedZoneId")
            if not isinstance(zone_id, str) or zone_id in route53.zones or zone_id in created:
                continue
            zone_name = properties.get("HostedZoneName")
            record_name = properties.get("Name")
            if not isinstance(zone_name, str):
                if not isinstance(record_name, str) or "." not in record_name.rstrip("."):
                    continue
                zone_name = record_name.rstrip(".").split(".", 1)[1]
            moto_id_manager.set_custom_id(HostedZoneIdentifier(account_id, zone_name, None), zone_id)
            route53.create_hosted_zone(zone_name, private_zone=False, comment="imported (recorded by devenv)")
            created.append(zone_id)
    return created
