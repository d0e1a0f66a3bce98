"""Application Auto Scaling targets and policies, readable through DescribeScalableTargets/ScalingPolicies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from moto.applicationautoscaling.models import ApplicationAutoscalingBackend, applicationautoscaling_backends

from devenv.emulator.models.base import DevenvModel, TemplateError, as_int, required


def backend(account_id: str, region_name: str) -> ApplicationAutoscalingBackend:
    return applicationautoscaling_backends[account_id][region_name]


class ScalableTarget(DevenvModel):
    """AWS::ApplicationAutoScaling::ScalableTarget; Ref is `resourceId|dimension|namespace`, as on AWS."""

    TYPE = "AWS::ApplicationAutoScaling::ScalableTarget"

    def __init__(self, namespace: str, resource_id: str, dimension: str) -> None:
        self.namespace = namespace
        self.resource_id = resource_id
        self.dimension = dimension
        self.physical_id = f"{resource_id}|{dimension}|{namespace}"

    @classmethod
    def _register(cls, properties: Any, account_id: str, region_name: str) -> ScalableTarget:
        kind = cls.TYPE
        target = cls(
            required(properties, "ServiceNamespace", kind),
            required(properties, "ResourceId", kind),
            required(properties, "ScalableDimension", kind),
        )
        suspended = properties.get("SuspendedState")
        backend(account_id, region_name).register_scalable_target(
            target.namespace,
            target.resource_id,
            target.dimension,
            min_capacity=as_int(required(properties, "MinCapacity", kind)),
            max_capacity=as_int(required(properties, "MaxCapacity", kind)),
            role_arn=properties.get("RoleARN", ""),
            suspended_state=suspended,
        )
        if properties.get("ScheduledActions"):
            raise TemplateError(f"{kind}: ScheduledActions are not emulated")
        return target

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> ScalableTarget:
        return cls._register(properties, account_id, region_name)

    @classmethod
    def update_resource(
        cls, original: ScalableTarget, name: str, properties: Any, account_id: str, region_name: str
    ) -> ScalableTarget:
        """New bounds apply in place (RegisterScalableTarget updates an existing target)."""
        target = cls._register(properties, account_id, region_name)
        if target.physical_id != original.physical_id:
            original.delete(account_id, region_name)
        return target

    def delete(self, account_id: str, region_name: str) -> None:
        scaling = backend(account_id, region_name)
        for policy in list(scaling.policies.values()):
            if policy.resource_id == self.resource_id and policy.scalable_dimension == self.dimension:
                scaling.delete_scaling_policy(
                    policy.policy_name, self.namespace, self.resource_id, self.dimension
                )
        scaling.deregister_scalable_target(self.namespace, self.resource_id, self.dimension)


class ScalingPolicy(DevenvModel):
    """AWS::ApplicationAutoScaling::ScalingPolicy; Ref is the policy ARN."""

    TYPE = "AWS::ApplicationAutoScaling::ScalingPolicy"
    NAME_PROPERTY = "PolicyName"

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.physical_id = policy.policy_arn

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        return {"Arn": lambda: self.policy.policy_arn}

    @classmethod
    def _put(cls, name: str, properties: Any, account_id: str, region_name: str) -> ScalingPolicy:
        kind = cls.TYPE
        target_ref = properties.get("ScalingTargetId")
        if target_ref:
            resource_id, dimension, namespace = str(target_ref).split("|")
        else:
            namespace = required(properties, "ServiceNamespace", kind)
            resource_id = required(properties, "ResourceId", kind)
            dimension = required(properties, "ScalableDimension", kind)
        policy_type = required(properties, "PolicyType", kind)
        body_key = {
            "TargetTrackingScaling": "TargetTrackingScalingPolicyConfiguration",
            "StepScaling": "StepScalingPolicyConfiguration",
        }.get(policy_type)
        if body_key is None:
            raise TemplateError(f"{kind}: policy type {policy_type!r} is not emulated")
        policy = backend(account_id, region_name).put_scaling_policy(
            policy_name=name,
            service_namespace=namespace,
            resource_id=resource_id,
            scalable_dimension=dimension,
            policy_body=required(properties, body_key, kind),
            policy_type=policy_type,
        )
        return cls(policy)

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> ScalingPolicy:
        return cls._put(properties.get("PolicyName") or name, properties, account_id, region_name)

    @classmethod
    def update_resource(
        cls, original: ScalingPolicy, name: str, properties: Any, account_id: str, region_name: str
    ) -> ScalingPolicy:
        name = properties.get("PolicyName") or original.policy.policy_name
        if name != original.policy.policy_name:
            original.delete(account_id, region_name)
        return cls._put(name, properties, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        policy = self.policy
        scaling = backend(account_id, region_name)
        key = type(policy).formulate_key(
            policy.service_namespace, policy.resource_id, policy.scalable_dimension, policy.policy_name
        )
        if key in scaling.policies:
            scaling.delete_scaling_policy(
                policy.policy_name, policy.service_namespace, policy.resource_id, policy.scalable_dimension
            )
