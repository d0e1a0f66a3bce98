"""ElastiCache Redis as a replication group: a CacheCluster cannot encrypt Redis in transit."""

from __future__ import annotations

from aws_cdk import Fn, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from constructs import Construct

from stack.config import StackProps
from stack.constructs.network import REDIS_PORT


class Cache(Construct):
    """HTTP cache and event bus; TLS in transit, so the app connects with `rediss://`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: StackProps,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        subnet_group = elasticache.CfnSubnetGroup(
            self,
            "SubnetGroup",
            description="LLM proxy Redis: data subnets",
            subnet_ids=subnet_ids,
        )
        failover = props.redis_num_nodes > 1
        self.replication_group = elasticache.CfnReplicationGroup(
            self,
            "ReplicationGroup",
            replication_group_description="LLM proxy HTTP cache and event bus",
            engine="redis",
            engine_version=props.redis_engine_version,
            cache_node_type=props.redis_node_type,
            num_cache_clusters=props.redis_num_nodes,
            automatic_failover_enabled=failover,
            multi_az_enabled=failover,
            transit_encryption_enabled=True,
            at_rest_encryption_enabled=True,
            port=REDIS_PORT,
            cache_subnet_group_name=subnet_group.ref,
            security_group_ids=[security_group.security_group_id],
            snapshot_retention_limit=1,
            auto_minor_version_upgrade=True,
        )
        self.endpoint = self.replication_group.attr_primary_end_point_address
        self.port = self.replication_group.attr_primary_end_point_port
        self.url = Fn.join("", ["rediss://", self.endpoint, ":", self.port])
        # Member clusters are named <replication group id>-001, -002, ... (the metrics' CacheClusterId).
        self.member_ids = [
            Fn.join("-", [Token.as_string(self.replication_group.ref), f"{index + 1:03d}"])
            for index in range(props.redis_num_nodes)
        ]
