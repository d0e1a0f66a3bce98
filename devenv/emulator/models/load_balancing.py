"""ELBv2 attributes moto leaves out, which request-count scaling and alarm dimensions need."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from moto.elbv2.models import FakeLoadBalancer, FakeTargetGroup

from devenv.emulator.models.base import DevenvModel

# The ALB hosted zone of each region (public AWS values; only us-east-1's is needed so far).
ALB_HOSTED_ZONES = {
    "us-east-1": "Z35SXDOTRQ7X7K",
    "eu-central-1": "Z215JYRZR1TBD5",
    "eu-west-1": "Z32O12XQLNTSW2",
}


def _arn_suffix(arn: str, kind: str) -> str:
    """`app/name/id` or `targetgroup/name/id`: the part of the ARN CloudWatch dimensions use."""
    return arn[arn.index(f":{kind}/") + 1 :] if f":{kind}/" in arn else arn.split(":", 5)[-1]


class LoadBalancer(FakeLoadBalancer, DevenvModel):
    """moto's FakeLoadBalancer, with the attributes it lacks; moto's instances are re-classed on creation."""

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> FakeLoadBalancer:
        created = FakeLoadBalancer.create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs
        )
        created.__class__ = cls
        return created

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ElasticLoadBalancingV2::LoadBalancer"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        return {
            "DNSName": lambda: self.dns_name,
            "LoadBalancerName": lambda: self.name,
            "LoadBalancerArn": lambda: self.arn,
            "LoadBalancerFullName": lambda: _arn_suffix(self.arn, "loadbalancer").removeprefix(
                "loadbalancer/"
            ),
            "CanonicalHostedZoneID": lambda: ALB_HOSTED_ZONES.get(
                self.arn.split(":")[3], ALB_HOSTED_ZONES["us-east-1"]
            ),
            "SecurityGroups": lambda: list(self.security_groups),
        }

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return DevenvModel.get_cfn_attribute(self, attribute_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: FakeLoadBalancer,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> FakeLoadBalancer:
        """Attributes and security groups change in place; the balancer keeps its name and DNS."""
        properties = cloudformation_json["Properties"]
        if properties.get("SecurityGroups"):
            original_resource.security_groups = properties["SecurityGroups"]
        return original_resource


class TargetGroup(FakeTargetGroup, DevenvModel):
    """moto's FakeTargetGroup, with the attributes it lacks; moto's instances are re-classed on creation."""

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> FakeTargetGroup:
        created = FakeTargetGroup.create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs
        )
        created.__class__ = cls
        return created

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ElasticLoadBalancingV2::TargetGroup"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        return {
            "TargetGroupArn": lambda: self.arn,
            "TargetGroupName": lambda: self.name,
            "TargetGroupFullName": lambda: _arn_suffix(self.arn, "targetgroup"),
            "LoadBalancerArns": lambda: list(self.load_balancer_arns),
        }

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return DevenvModel.get_cfn_attribute(self, attribute_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: FakeTargetGroup,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> FakeTargetGroup:
        """Health check settings and attributes change in place."""
        properties = cloudformation_json["Properties"]
        for prop, attr in (
            ("HealthCheckPath", "health_check_path"),
            ("HealthCheckIntervalSeconds", "health_check_interval_seconds"),
            ("HealthCheckTimeoutSeconds", "health_check_timeout_seconds"),
            ("HealthyThresholdCount", "healthy_threshold_count"),
            ("UnhealthyThresholdCount", "unhealthy_threshold_count"),
        ):
            if prop in properties:
                setattr(original_resource, attr, properties[prop])
        for item in properties.get("TargetGroupAttributes") or []:
            original_resource.attributes[item["Key"]] = item["Value"]
        return original_resource


class CdkMetadata(DevenvModel):
    """AWS::CDK::Metadata: the CDK's version report; recorded, nothing to emulate."""

    def __init__(self, name: str) -> None:
        self.physical_id = name

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CDK::Metadata"

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> CdkMetadata:
        return cls(resource_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: CdkMetadata,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> CdkMetadata:
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        """Nothing outside the stack."""
