"""Network resources moto lacks. Locally there is no network isolation: these are recorded in EC2 only."""

from __future__ import annotations

from typing import Any

from moto.ec2.models import EC2Backend, ec2_backends

from devenv.emulator.models.base import DevenvModel, TemplateError, required


def backend(account_id: str, region_name: str) -> EC2Backend:
    return ec2_backends[account_id][region_name]


class SecurityGroupEgress(DevenvModel):
    """AWS::EC2::SecurityGroupEgress: an egress rule on an existing group (DescribeSecurityGroups shows it)."""

    TYPE = "AWS::EC2::SecurityGroupEgress"

    def __init__(self, group_id: str, rule: dict[str, Any]) -> None:
        self.group_id = group_id
        self.rule = rule
        self.physical_id = f"{group_id}|egress|{rule['ip_protocol']}|{rule['from_port']}|{rule['to_port']}"

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> SecurityGroupEgress:
        kind = cls.TYPE
        group_id = required(properties, "GroupId", kind)
        destination = properties.get("DestinationSecurityGroupId")
        cidr = properties.get("CidrIp")
        if not destination and not cidr and not properties.get("CidrIpv6"):
            raise TemplateError(f"{kind}: one of CidrIp, CidrIpv6 or DestinationSecurityGroupId is required")
        rule = {
            "ip_protocol": str(required(properties, "IpProtocol", kind)),
            "from_port": properties.get("FromPort"),
            "to_port": properties.get("ToPort"),
            "ip_ranges": [{"CidrIp": cidr, "Description": properties.get("Description")}] if cidr else [],
            "source_groups": [{"GroupId": destination}] if destination else [],
        }
        backend(account_id, region_name).authorize_security_group_egress(group_id, **rule)
        return cls(group_id, rule)

    def delete(self, account_id: str, region_name: str) -> None:
        ec2 = backend(account_id, region_name)
        if ec2.get_security_group_from_id(self.group_id) is not None:
            ec2.revoke_security_group_egress(self.group_id, **self.rule)
