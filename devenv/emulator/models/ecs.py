"""ECS task definitions and services that keep what the realizer and the ECS API need.

moto's own CloudFormation models drop cpu, runtimePlatform, requiresCompatibilities, networkMode, the
roles, and the service's launch type, load balancers and network configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from moto.core.utils import pascal_to_camelcase, remap_nested_keys
from moto.ecs.models import EC2ContainerServiceBackend, ecs_backends
from moto.ecs.models import Service as MotoService
from moto.ecs.models import TaskDefinition as MotoTaskDefinition

from devenv.emulator.models.base import CfnAttributes, ExtendsMoto, as_int, required, tag_list


def backend(account_id: str, region_name: str) -> EC2ContainerServiceBackend:
    return ecs_backends[account_id][region_name]


def _camel(value: Any) -> Any:
    return remap_nested_keys(value, pascal_to_camelcase) if value is not None else None


def _register(properties: Any, family: str, account_id: str, region_name: str) -> MotoTaskDefinition:
    kind = TaskDefinition.TYPE
    definition = backend(account_id, region_name).register_task_definition(
        family=family,
        container_definitions=_camel(required(properties, "ContainerDefinitions", kind)),
        volumes=_camel(properties.get("Volumes")),
        network_mode=properties.get("NetworkMode"),
        tags=[{"key": t["Key"], "value": t["Value"]} for t in tag_list(properties)],
        placement_constraints=_camel(properties.get("PlacementConstraints")),
        requires_compatibilities=properties.get("RequiresCompatibilities"),
        cpu=str(properties["Cpu"]) if properties.get("Cpu") is not None else None,
        memory=str(properties["Memory"]) if properties.get("Memory") is not None else None,
        task_role_arn=properties.get("TaskRoleArn"),
        execution_role_arn=properties.get("ExecutionRoleArn"),
        proxy_configuration=_camel(properties.get("ProxyConfiguration")),
        runtime_platform=_camel(properties.get("RuntimePlatform")),
        ipc_mode=properties.get("IpcMode"),
        pid_mode=properties.get("PidMode"),
        ephemeral_storage=_camel(properties.get("EphemeralStorage")),
    )
    return definition


class TaskDefinition(ExtendsMoto, CfnAttributes, MotoTaskDefinition):
    """AWS::ECS::TaskDefinition; Ref is the revision's ARN. Any change registers a new revision."""

    TYPE = "AWS::ECS::TaskDefinition"

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        return {"TaskDefinitionArn": lambda: self.arn}

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> MotoTaskDefinition:
        family = properties.get("Family") or name
        return cls.adopt(_register(properties, family, account_id, region_name))

    @classmethod
    def update_resource(
        cls, original: MotoTaskDefinition, name: str, properties: Any, account_id: str, region_name: str
    ) -> MotoTaskDefinition:
        family = properties.get("Family") or original.family
        new = _register(properties, family, account_id, region_name)
        backend(account_id, region_name).deregister_task_definition(original.arn)
        return cls.adopt(new)

    def delete(self, account_id: str, region_name: str) -> None:
        ecs = backend(account_id, region_name)
        if self.status == "ACTIVE":
            ecs.deregister_task_definition(self.arn)


def _service_settings(properties: Any) -> dict[str, Any]:
    return {
        "load_balancers": _camel(properties.get("LoadBalancers")) or [],
        "launch_type": properties.get("LaunchType")
        or ("FARGATE" if not properties.get("CapacityProviderStrategy") else None),
        "network_configuration": _camel(properties.get("NetworkConfiguration")),
        "platform_version": properties.get("PlatformVersion"),
        "deployment_controller": _camel(properties.get("DeploymentController")),
        "propagate_tags": properties.get("PropagateTags") or "NONE",
        "scheduling_strategy": properties.get("SchedulingStrategy"),
        "service_registries": _camel(properties.get("ServiceRegistries")),
        "tags": [{"key": t["Key"], "value": t["Value"]} for t in tag_list(properties)],
    }


def _apply_extras(service: MotoService, properties: Any) -> MotoService:
    """Settings moto's create_service has no argument for, kept as the DescribeServices fields."""
    service.health_check_grace_period_seconds = as_int(properties.get("HealthCheckGracePeriodSeconds"))  # type: ignore[attr-defined]
    service.deployment_configuration = _camel(properties.get("DeploymentConfiguration"))  # type: ignore[attr-defined]
    service.enable_execute_command = str(properties.get("EnableExecuteCommand", "false")).lower() == "true"  # type: ignore[attr-defined]
    service.capacity_provider_strategy = _camel(properties.get("CapacityProviderStrategy"))  # type: ignore[attr-defined]
    return service


class Service(ExtendsMoto, CfnAttributes, MotoService):
    """AWS::ECS::Service (Fargate); Ref is the service ARN. Tasks are started by the realizer, not here."""

    TYPE = "AWS::ECS::Service"
    NAME_PROPERTY = "ServiceName"

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        return {"Name": lambda: self.name, "ServiceArn": lambda: self.arn}

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> MotoService:
        kind = cls.TYPE
        service = backend(account_id, region_name).create_service(
            str(properties.get("Cluster") or "default").split("/")[-1],
            properties.get("ServiceName") or name,
            as_int(properties.get("DesiredCount", 1)),  # type: ignore[arg-type]
            task_definition_str=required(properties, "TaskDefinition", kind),
            **_service_settings(properties),
        )
        return _apply_extras(cls.adopt(service), properties)

    @classmethod
    def update_resource(
        cls, original: MotoService, name: str, properties: Any, account_id: str, region_name: str
    ) -> MotoService:
        """Desired count, task definition, load balancers and network settings change in place."""
        settings = _service_settings(properties)
        service = backend(account_id, region_name).update_service(
            {
                "cluster": original.cluster_name,
                "service": original.name,
                "task_definition": properties.get("TaskDefinition"),
                "desired_count": as_int(properties.get("DesiredCount")),
                "load_balancers": settings["load_balancers"],
                "network_configuration": settings["network_configuration"],
            }
        )
        return _apply_extras(service, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        backend(account_id, region_name).delete_service(self.cluster_name, self.name, force=True)
