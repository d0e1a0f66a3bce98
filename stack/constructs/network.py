"""The VPC (new or imported) and the four security groups of the seed's table, with exactly its rules."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from stack.config import StackProps
from stack.names import CONTAINER_PORT

POSTGRES_PORT = 5432
REDIS_PORT = 6379


@dataclass(frozen=True)
class SecurityGroups:
    alb: ec2.SecurityGroup
    ecs: ec2.SecurityGroup
    database: ec2.SecurityGroup
    redis: ec2.SecurityGroup


class Network(Construct):
    """Public (ALB, NAT), private (ECS tasks) and isolated data subnets (Aurora, Redis) across 2 AZs."""

    def __init__(self, scope: Construct, construct_id: str, *, props: StackProps) -> None:
        super().__init__(scope, construct_id)
        if props.existing_vpc_id:
            self.vpc: ec2.IVpc = ec2.Vpc.from_lookup(self, "Vpc", vpc_id=props.existing_vpc_id)
        else:
            prefix = int(props.vpc_cidr.split("/")[1])
            mask = max(24, prefix + 3)
            self.vpc = ec2.Vpc(
                self,
                "Vpc",
                ip_addresses=ec2.IpAddresses.cidr(props.vpc_cidr),
                max_azs=2,
                nat_gateways=props.nat_gateways,
                subnet_configuration=[
                    ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=mask),
                    ec2.SubnetConfiguration(
                        name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=mask
                    ),
                    ec2.SubnetConfiguration(
                        name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=mask
                    ),
                ],
            )
        self.public_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
        self.app_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        # An imported VPC may have no isolated tier: the data stores then share the private subnets.
        self.data_subnets = (
            ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
            if self.vpc.isolated_subnets
            else self.app_subnets
        )
        self.security_groups = self._security_groups(props)

    def _security_groups(self, props: StackProps) -> SecurityGroups:
        def group(name: str, description: str) -> ec2.SecurityGroup:
            return ec2.SecurityGroup(
                self, name, vpc=self.vpc, description=description, allow_all_outbound=False
            )

        alb = group("AlbSecurityGroup", "LLM proxy ALB: 443 (and 80 for the redirect) from anywhere")
        ecs = group("EcsSecurityGroup", "LLM proxy tasks: 8080 from the ALB")
        database = group("DatabaseSecurityGroup", "Aurora: 5432 from the tasks")
        redis = group("RedisSecurityGroup", "ElastiCache Redis: 6379 from the tasks")

        listener_ports = (443, 80) if props.https else (80,)
        for port in listener_ports:
            alb.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(port), f"clients on {port}")
        alb.add_egress_rule(ecs, ec2.Port.tcp(CONTAINER_PORT), "to the proxy tasks")
        ecs.add_ingress_rule(alb, ec2.Port.tcp(CONTAINER_PORT), "from the ALB")
        ecs.add_egress_rule(database, ec2.Port.tcp(POSTGRES_PORT), "to Aurora")
        ecs.add_egress_rule(redis, ec2.Port.tcp(REDIS_PORT), "to Redis")
        ecs.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS: upstream LLM API, ECR, Secrets Manager, SSM, logs"
        )
        database.add_ingress_rule(ecs, ec2.Port.tcp(POSTGRES_PORT), "from the tasks")
        redis.add_ingress_rule(ecs, ec2.Port.tcp(REDIS_PORT), "from the tasks")
        return SecurityGroups(alb=alb, ecs=ecs, database=database, redis=redis)
