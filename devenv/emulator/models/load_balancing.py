"""ELBv2 attributes moto leaves out, which request-count scaling and alarm dimensions need."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from moto.elbv2.models import FakeLoadBalancer, FakeTargetGroup

from devenv.emulator.models.base import CfnAttributes, DevenvModel, ExtendsMoto

# The ALB hosted zone of each region (public AWS values; only us-east-1's is needed so far).
ALB_HOSTED_ZONES = {
    "us-east-1": "Z35SXDOTRQ7X7K",
    "eu-central-1": "Z215JYRZR1TBD5",
    "eu-west-1": "Z32O12XQLNTSW2",
}


def _arn_suffix(arn: str, kind: str) -> str:
    """`app/name/id` or `targetgroup/name/id`: the part of the ARN CloudWatch dimensions use."""
    return arn[arn.index(f":{kind}/") + 1 :] if f":{kind}/" in arn else arn.split(":", 5)[-1]


class LoadBalancer(ExtendsMoto, CfnAttributes, FakeLoadBalancer):
    """moto's FakeLoadBalancer, with the attributes it lacks; moto's instances are re-classed on creation."""

    TYPE = "AWS::ElasticLoadBalancingV2::LoadBalancer"
    NAME_PROPERTY = "Name"

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
    def update_resource(
        cls, original: FakeLoadBalancer, name: str, properties: Any, account_id: str, region_name: str
    ) -> FakeLoadBalancer:
        """Attributes and security groups change in place; the balancer keeps its name and DNS."""
        if properties.get("SecurityGroups"):
            original.security_groups = properties["SecurityGroups"]
        return original


class TargetGroup(ExtendsMoto, CfnAttributes, FakeTargetGroup):
    """moto's FakeTargetGroup, with the attributes it lacks; moto's instances are re-classed on creation."""

    TYPE = "AWS::ElasticLoadBalancingV2::TargetGroup"
    NAME_PROPERTY = "Name"

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        return {
            "TargetGroupArn": lambda: self.arn,
            "TargetGroupName": lambda: self.name,
            "TargetGroupFullName": lambda: _arn_suffix(self.arn, "targetgroup"),
            "LoadBalancerArns": lambda: list(self.load_balancer_arns),
        }

    @classmethod
    def update_resource(
        cls, original: FakeTargetGroup, name: str, properties: Any, account_id: str, region_name: str
    ) -> FakeTargetGroup:
        """Health check settings and attributes change in place."""
        for prop, attr in (
            ("HealthCheckPath", "health_check_path"),
            ("HealthCheckIntervalSeconds", "health_check_interval_seconds"),
            ("HealthCheckTimeoutSeconds", "health_check_timeout_seconds"),
            ("HealthyThresholdCount", "healthy_threshold_count"),
            ("UnhealthyThresholdCount", "unhealthy_threshold_count"),
        ):
            if prop in properties:
                setattr(original, attr, properties[prop])
        for item in properties.get("TargetGroupAttributes") or []:
            original.attributes[item["Key"]] = item["Value"]
        return original


class CdkMetadata(DevenvModel):
    """AWS::CDK::Metadata: the CDK's version report; recorded, nothing to emulate."""

    TYPE = "AWS::CDK::Metadata"

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> CdkMetadata:
        return cls(name)

    @classmethod
    def update_resource(
        cls, original: CdkMetadata, name: str, properties: Any, account_id: str, region_name: str
    ) -> CdkMetadata:
        return original
