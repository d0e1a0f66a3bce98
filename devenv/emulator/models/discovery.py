"""Cloud Map (AWS::ServiceDiscovery::*), kept in moto's servicediscovery backend: on AWS the load
generator's workers find its master by name (`master.loadgen.local`); here the namespace and the service
exist and read back through the Cloud Map API, but no instance is registered and the names do not resolve."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from moto.servicediscovery.models import ServiceDiscoveryBackend, servicediscovery_backends

from devenv.emulator.models.base import DevenvModel, required


def backend(account_id: str, region_name: str) -> ServiceDiscoveryBackend:
    return servicediscovery_backends[account_id][region_name]


class PrivateDnsNamespace(DevenvModel):
    """AWS::ServiceDiscovery::PrivateDnsNamespace; Ref and Id are the namespace id."""

    TYPE = "AWS::ServiceDiscovery::PrivateDnsNamespace"
    NAME_PROPERTY = "Name"

    def __init__(self, namespace_id: str, arn: str, hosted_zone_id: str) -> None:
        super().__init__(namespace_id)
        self.arn = arn
        self.hosted_zone_id = hosted_zone_id

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> PrivateDnsNamespace:
        namespace_name = required(properties, "Name", cls.TYPE)
        vpc = required(properties, "Vpc", cls.TYPE)
        cloud_map = backend(account_id, region_name)
        cloud_map.create_private_dns_namespace(
            namespace_name,
            name,
            properties.get("Description") or "",
            vpc,
            [],
            properties.get("Properties") or {},
        )
        made = next(n for n in cloud_map.namespaces.values() if n.name == namespace_name and n.vpc == vpc)
        return cls(made.id, made.arn, made.dns_properties.get("HostedZoneId", ""))

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        return {
            "Id": lambda: self.physical_id,
            "Arn": lambda: self.arn,
            "HostedZoneId": lambda: self.hosted_zone_id,
        }

    def delete(self, account_id: str, region_name: str) -> None:
        cloud_map = backend(account_id, region_name)
        if self.physical_id in cloud_map.namespaces:
            cloud_map.delete_namespace(self.physical_id)


class DiscoveryService(DevenvModel):
    """AWS::ServiceDiscovery::Service; Ref and Id are the service id (what an ECS service registers in)."""

    TYPE = "AWS::ServiceDiscovery::Service"
    NAME_PROPERTY = "Name"

    def __init__(self, service_id: str, arn: str, name: str) -> None:
        super().__init__(service_id)
        self.arn = arn
        self.name = name

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> DiscoveryService:
        service = backend(account_id, region_name).create_service(
            name=properties.get("Name") or name,
            namespace_id=properties.get("NamespaceId") or "",
            creator_request_id=name,
            description=properties.get("Description") or "",
            dns_config=properties.get("DnsConfig") or {},
            health_check_config=properties.get("HealthCheckConfig") or {},
            health_check_custom_config=properties.get("HealthCheckCustomConfig") or {},
            tags=[],
            service_type=properties.get("Type") or "DNS_HTTP",
        )
        return cls(service.id, service.arn, service.name)

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        return {"Id": lambda: self.physical_id, "Arn": lambda: self.arn, "Name": lambda: self.name}

    def delete(self, account_id: str, region_name: str) -> None:
        backend(account_id, region_name).delete_service(self.physical_id)
