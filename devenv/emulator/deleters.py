"""Deletes for moto models that have none, so a stack delete leaves nothing behind.

moto calls `resource.delete()` or the class's `delete_from_cloudformation_json`; for the types below it has
neither and silently keeps the resource (and then the VPC cannot go: DependencyViolation). Each function
here removes one resource through the service backend, as the AWS API would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ecs.models import ecs_backends
from moto.elbv2.models import elbv2_backends
from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition


def _ec2(account_id: str, region_name: str) -> Any:
    return ec2_backends[account_id][region_name]


def delete_route(resource: Any, account_id: str, region_name: str) -> None:
    table = resource.route_table
    if table.id in _ec2(account_id, region_name).route_tables:
        _ec2(account_id, region_name).delete_route(table.id, resource.destination_cidr_block)


def delete_subnet_association(resource: Any, account_id: str, region_name: str) -> None:
    ec2 = _ec2(account_id, region_name)
    table = ec2.route_tables.get(resource.route_table_id)
    if table is None:
        return
    for association_id, subnet_id in list(table._associations.items()):
        if subnet_id == resource.subnet_id:
            ec2.disassociate_route_table(association_id)


def delete_route_table(resource: Any, account_id: str, region_name: str) -> None:
    if resource.id in _ec2(account_id, region_name).route_tables:
        _ec2(account_id, region_name).delete_route_table(resource.id)


def delete_nat_gateway(resource: Any, account_id: str, region_name: str) -> None:
    """moto only marks a NAT gateway deleted; its network interface and the record go too, as on AWS."""
    ec2 = _ec2(account_id, region_name)
    if resource.id in ec2.nat_gateways:
        ec2.delete_nat_gateway(resource.id)
        eni = getattr(resource, "_eni", None)
        if eni is not None and eni.id in ec2.enis:
            ec2.delete_network_interface(eni.id)
        ec2.nat_gateways.pop(resource.id, None)


def delete_elastic_ip(resource: Any, account_id: str, region_name: str) -> None:
    ec2 = _ec2(account_id, region_name)
    if resource.allocation_id and any(a.allocation_id == resource.allocation_id for a in ec2.addresses):
        ec2.release_address(allocation_id=resource.allocation_id)


def delete_gateway_attachment(resource: Any, account_id: str, region_name: str) -> None:
    ec2 = _ec2(account_id, region_name)
    gateway = ec2.internet_gateways.get(resource.gateway_id)
    if gateway is not None and gateway.vpc is not None:
        ec2.detach_internet_gateway(resource.gateway_id, resource.vpc_id)
    elif resource.gateway_id.startswith("vgw-"):
        ec2.detach_vpn_gateway(resource.gateway_id, resource.vpc_id)


def delete_internet_gateway(resource: Any, account_id: str, region_name: str) -> None:
    ec2 = _ec2(account_id, region_name)
    if resource.id in ec2.internet_gateways:
        ec2.delete_internet_gateway(resource.id)


def delete_ingress_rule(resource: Any, account_id: str, region_name: str) -> None:
    """The rule goes with its security group; revoke it when the group outlives it."""
    ec2 = _ec2(account_id, region_name)
    group = resource.security_group
    if ec2.get_security_group_from_id(group.id) is None:
        return
    properties = resource.properties
    source = properties.get("SourceSecurityGroupId")
    ec2.revoke_security_group_ingress(
        group.id,
        ip_protocol=str(properties.get("IpProtocol")),
        from_port=properties.get("FromPort"),
        to_port=properties.get("ToPort"),
        ip_ranges=[{"CidrIp": properties["CidrIp"]}] if properties.get("CidrIp") else [],
        source_groups=[{"GroupId": source}] if source else [],
    )


def delete_ecs_cluster(resource: Any, account_id: str, region_name: str) -> None:
    ecs = ecs_backends[account_id][region_name]
    if resource.name in ecs.clusters:
        ecs.delete_cluster(resource.name)


def delete_listener(resource: Any, account_id: str, region_name: str) -> None:
    elbv2 = elbv2_backends[account_id][region_name]
    balancer = elbv2.load_balancers.get(resource.load_balancer_arn)
    if balancer is not None and resource.arn in balancer.listeners:
        elbv2.delete_listener(resource.arn)


def delete_load_balancer(resource: Any, account_id: str, region_name: str) -> None:
    elbv2 = elbv2_backends[account_id][region_name]
    if resource.arn in elbv2.load_balancers:
        elbv2.delete_load_balancer(resource.arn)


def delete_target_group(resource: Any, account_id: str, region_name: str) -> None:
    elbv2 = elbv2_backends[account_id][region_name]
    if resource.arn in elbv2.target_groups:
        elbv2.delete_target_group(resource.arn)


def delete_managed_policy(resource: Any, account_id: str, region_name: str) -> None:
    iam = iam_backends[account_id][get_partition(region_name)]
    if resource.arn in iam.managed_policies:
        for role in iam.roles.values():
            if resource.arn in role.managed_policies:
                iam.detach_role_policy(resource.arn, role.name)
        iam.delete_policy(resource.arn)


DELETERS: dict[str, Callable[[Any, str, str], None]] = {
    "AWS::EC2::Route": delete_route,
    "AWS::EC2::SubnetRouteTableAssociation": delete_subnet_association,
    "AWS::EC2::RouteTable": delete_route_table,
    "AWS::EC2::NatGateway": delete_nat_gateway,
    "AWS::EC2::EIP": delete_elastic_ip,
    "AWS::EC2::VPCGatewayAttachment": delete_gateway_attachment,
    "AWS::EC2::InternetGateway": delete_internet_gateway,
    "AWS::EC2::SecurityGroupIngress": delete_ingress_rule,
    "AWS::ECS::Cluster": delete_ecs_cluster,
    "AWS::ElasticLoadBalancingV2::Listener": delete_listener,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": delete_load_balancer,
    "AWS::ElasticLoadBalancingV2::TargetGroup": delete_target_group,
    "AWS::IAM::ManagedPolicy": delete_managed_policy,
}
