"""ElastiCache on the local Redis: replication groups, cache clusters, subnet and parameter groups.

Every endpoint the APIs and `Fn::GetAtt` report is the local Redis (`DEVENV_REDIS_ENDPOINT`). The member
clusters of a replication group are registered too, so DescribeCacheClusters lists them with their nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from moto.elasticache.models import CacheCluster as MotoCacheCluster
from moto.elasticache.models import ElastiCacheBackend, ReplicationGroup, elasticache_backends

from devenv.emulator import local_backends
from devenv.emulator.models.base import DevenvModel, TemplateError, as_bool, as_int, required, tag_list


def backend(account_id: str, region_name: str) -> ElastiCacheBackend:
    return elasticache_backends[account_id][region_name]


def _cache_cluster(
    account_id: str, region_name: str, cluster_id: str, properties: Any, group_id: str | None
) -> MotoCacheCluster:
    endpoint = local_backends.redis_endpoint()
    cluster = MotoCacheCluster(
        account_id=account_id,
        region_name=region_name,
        cache_cluster_id=cluster_id,
        cache_node_type=properties.get("CacheNodeType") or "cache.t4g.micro",
        replication_group_id=group_id,
        az_mode=properties.get("AZMode"),
        preferred_availability_zone=properties.get("PreferredAvailabilityZone"),
        num_cache_nodes=as_int(properties.get("NumCacheNodes")) or 1,
        engine=properties.get("Engine") or "redis",
        engine_version=properties.get("EngineVersion"),
        cache_parameter_group_name=properties.get("CacheParameterGroupName"),
        cache_subnet_group_name=properties.get("CacheSubnetGroupName"),
        transit_encryption_enabled=as_bool(properties.get("TransitEncryptionEnabled", False)),
        network_type=properties.get("NetworkType"),
        ip_discovery=properties.get("IpDiscovery"),
        snapshot_name=None,
        preferred_maintenance_window=properties.get("PreferredMaintenanceWindow"),
        port=endpoint.port,
        notification_topic_arn=None,
        auto_minor_version_upgrade=as_bool(properties.get("AutoMinorVersionUpgrade", True)),
        snapshot_retention_limit=as_int(properties.get("SnapshotRetentionLimit")),
        snapshot_window=properties.get("SnapshotWindow"),
        auth_token=None,
        outpost_mode=None,
        preferred_outpost_arn=None,
        preferred_availability_zones=None,
        cache_security_group_names=properties.get("CacheSecurityGroupNames"),
        security_group_ids=properties.get("SecurityGroupIds") or properties.get("VpcSecurityGroupIds"),
        tags=tag_list(properties),
        snapshot_arns=None,
        preferred_outpost_arns=None,
        log_delivery_configurations=[],
        cache_node_ids_to_remove=None,
        cache_node_ids_to_reboot=None,
    )
    cluster.cache_nodes = [  # type: ignore[attr-defined]
        {
            "CacheNodeId": f"{index + 1:04d}",
            "CacheNodeStatus": "available",
            "Endpoint": {"Address": endpoint.host, "Port": endpoint.port},
        }
        for index in range(cluster.num_cache_nodes)
    ]
    backend(account_id, region_name).cache_clusters[cluster_id] = cluster
    return cluster


class CacheCluster(DevenvModel):
    """AWS::ElastiCache::CacheCluster; Ref is the cluster id."""

    TYPE = "AWS::ElastiCache::CacheCluster"
    NAME_PROPERTY = "ClusterName"

    def __init__(self, account_id: str, region_name: str, cluster: MotoCacheCluster) -> None:
        self.cluster = cluster
        self.physical_id = cluster.cache_cluster_id

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        endpoint = local_backends.redis_endpoint()
        return {
            "RedisEndpoint.Address": lambda: endpoint.host,
            "RedisEndpoint.Port": lambda: str(endpoint.port),
            "ConfigurationEndpoint.Address": lambda: endpoint.host,
            "ConfigurationEndpoint.Port": lambda: str(endpoint.port),
        }

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> CacheCluster:
        required(properties, "CacheNodeType", cls.TYPE)
        cluster_id = (properties.get("ClusterName") or name).lower()[:40]
        return cls(
            account_id, region_name, _cache_cluster(account_id, region_name, cluster_id, properties, None)
        )

    @classmethod
    def update_resource(
        cls, original: CacheCluster, name: str, properties: Any, account_id: str, region_name: str
    ) -> CacheCluster:
        original.cluster.cache_node_type = properties.get("CacheNodeType", original.cluster.cache_node_type)
        return original

    def delete(self, account_id: str, region_name: str) -> None:
        backend(account_id, region_name).cache_clusters.pop(self.physical_id, None)


class CacheReplicationGroup(DevenvModel):
    """AWS::ElastiCache::ReplicationGroup (cluster mode disabled or enabled); Ref is the group id."""

    TYPE = "AWS::ElastiCache::ReplicationGroup"
    NAME_PROPERTY = "ReplicationGroupId"

    def __init__(self, account_id: str, region_name: str, group: ReplicationGroup) -> None:
        self.account_id = account_id
        self.region_name = region_name
        self.group = group
        self.physical_id = group.replication_group_id

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        endpoint = local_backends.redis_endpoint()
        return {
            "PrimaryEndPoint.Address": lambda: endpoint.host,
            "PrimaryEndPoint.Port": lambda: str(endpoint.port),
            "ReaderEndPoint.Address": lambda: endpoint.host,
            "ReaderEndPoint.Port": lambda: str(endpoint.port),
            "ConfigurationEndPoint.Address": lambda: endpoint.host,
            "ConfigurationEndPoint.Port": lambda: str(endpoint.port),
            "ReadEndPoint.Addresses": lambda: ",".join(endpoint.host for _ in self.group.member_clusters),
            "ReadEndPoint.Ports": lambda: ",".join(str(endpoint.port) for _ in self.group.member_clusters),
        }

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> CacheReplicationGroup:
        kind = cls.TYPE
        description = required(properties, "ReplicationGroupDescription", kind)
        engine = (properties.get("Engine") or "redis").lower()
        if engine not in ("redis", "valkey"):
            raise TemplateError(f"{kind}: engine {engine!r} has no local realization (redis or valkey)")
        group_id = (properties.get("ReplicationGroupId") or name).lower()[:40]
        num_clusters = as_int(properties.get("NumCacheClusters")) or 1
        replicas = as_int(properties.get("ReplicasPerNodeGroup"))
        if replicas is None and not properties.get("NumNodeGroups"):
            replicas = num_clusters - 1
        endpoint = local_backends.redis_endpoint()
        caches = backend(account_id, region_name)
        group = caches.create_replication_group(
            replication_group_id=group_id,
            replication_group_description=description,
            global_replication_group_id=properties.get("GlobalReplicationGroupId"),
            primary_cluster_id=properties.get("PrimaryClusterId"),
            automatic_failover_enabled=as_bool(properties.get("AutomaticFailoverEnabled", False)),
            multi_az_enabled=as_bool(properties.get("MultiAZEnabled", False)),
            num_cache_clusters=num_clusters,
            preferred_cache_cluster_azs=properties.get("PreferredCacheClusterAZs"),
            num_node_groups=as_int(properties.get("NumNodeGroups")),  # type: ignore[arg-type]
            replicas_per_node_group=replicas,  # type: ignore[arg-type]
            node_group_configuration=properties.get("NodeGroupConfiguration"),
            cache_node_type=properties.get("CacheNodeType"),
            engine=engine,
            engine_version=properties.get("EngineVersion"),
            cache_parameter_group_name=properties.get("CacheParameterGroupName"),
            cache_subnet_group_name=properties.get("CacheSubnetGroupName"),
            cache_security_group_names=properties.get("CacheSecurityGroupNames"),
            security_group_ids=properties.get("SecurityGroupIds"),
            tags=tag_list(properties),
            snapshot_arns=properties.get("SnapshotArns"),
            snapshot_name=properties.get("SnapshotName"),
            preferred_maintenance_window=properties.get("PreferredMaintenanceWindow"),
            port=endpoint.port,
            notification_topic_arn=properties.get("NotificationTopicArn"),
            auto_minor_version_upgrade=as_bool(properties.get("AutoMinorVersionUpgrade", True)),
            snapshot_retention_limit=as_int(properties.get("SnapshotRetentionLimit")),  # type: ignore[arg-type]
            snapshot_window=properties.get("SnapshotWindow"),
            auth_token=properties.get("AuthToken"),
            transit_encryption_enabled=as_bool(properties.get("TransitEncryptionEnabled", False)),
            at_rest_encryption_enabled=as_bool(properties.get("AtRestEncryptionEnabled", False)),
            kms_key_id=properties.get("KmsKeyId"),
            user_group_ids=properties.get("UserGroupIds") or [],
            log_delivery_configurations=properties.get("LogDeliveryConfigurations") or [],
            data_tiering_enabled=as_bool(properties.get("DataTieringEnabled", False)),
            network_type=properties.get("NetworkType"),
            ip_discovery=properties.get("IpDiscovery"),
            transit_encryption_mode=properties.get("TransitEncryptionMode"),
            cluster_mode=properties.get("ClusterMode"),
            serverless_cache_snapshot_name=None,  # type: ignore[arg-type]
        )
        _point_at_local_redis(group, endpoint)
        for member in group.member_clusters:
            _cache_cluster(account_id, region_name, member, properties, group_id)
        return cls(account_id, region_name, group)

    @classmethod
    def update_resource(
        cls, original: CacheReplicationGroup, name: str, properties: Any, account_id: str, region_name: str
    ) -> CacheReplicationGroup:
        """Description, node type, failover and snapshot settings change in place."""
        backend(account_id, region_name).modify_replication_group(
            replication_group_id=original.physical_id,
            replication_group_description=properties.get("ReplicationGroupDescription"),
            engine=properties.get("Engine"),
            cache_node_type=properties.get("CacheNodeType"),
            automatic_failover_enabled=as_bool(properties.get("AutomaticFailoverEnabled", False)),
            multi_az_enabled=as_bool(properties.get("MultiAZEnabled", False)),
            snapshot_retention_limit=as_int(properties.get("SnapshotRetentionLimit")),  # type: ignore[arg-type]
        )
        return original

    def delete(self, account_id: str, region_name: str) -> None:
        caches = backend(account_id, region_name)
        for member in self.group.member_clusters:
            caches.cache_clusters.pop(member, None)
        caches.replication_groups.pop(self.physical_id, None)


def _point_at_local_redis(group: ReplicationGroup, endpoint: local_backends.Endpoint) -> None:
    """Rewrite the endpoints moto invented (*.cache.amazonaws.com) to the local Redis."""
    for node_group in group.node_groups:
        for key in ("primary_endpoint_address", "reader_endpoint_address"):
            if key in node_group:
                node_group[key] = endpoint.host
        if "primary_endpoint" in node_group:
            node_group["primary_endpoint"] = {"address": endpoint.host, "port": endpoint.port}
        node_group["port"] = endpoint.port
        for member in node_group.get("node_group_members", []):
            member["read_endpoint"] = {"address": endpoint.host, "port": endpoint.port}
    if getattr(group, "configuration_endpoint", None):
        group.configuration_endpoint = {"address": endpoint.host, "port": endpoint.port}


class CacheSubnetGroup(DevenvModel):
    """AWS::ElastiCache::SubnetGroup; Ref is the group name."""

    TYPE = "AWS::ElastiCache::SubnetGroup"
    NAME_PROPERTY = "CacheSubnetGroupName"

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> CacheSubnetGroup:
        kind = cls.TYPE
        name = (properties.get("CacheSubnetGroupName") or name).lower()
        backend(account_id, region_name).create_cache_subnet_group(
            cache_subnet_group_name=name,
            cache_subnet_group_description=required(properties, "Description", kind),
            subnet_ids=required(properties, "SubnetIds", kind),
            tags=tag_list(properties) or None,
        )
        return cls(name)

    @classmethod
    def update_resource(
        cls, original: CacheSubnetGroup, name: str, properties: Any, account_id: str, region_name: str
    ) -> CacheSubnetGroup:
        stored = backend(account_id, region_name).cache_subnet_groups[original.physical_id]
        stored.cache_subnet_group_description = properties.get("Description")
        return original

    def delete(self, account_id: str, region_name: str) -> None:
        backend(account_id, region_name).cache_subnet_groups.pop(self.physical_id, None)


class CacheParameterGroup(DevenvModel):
    """AWS::ElastiCache::ParameterGroup: recorded (its parameters are not applied to the local Redis)."""

    TYPE = "AWS::ElastiCache::ParameterGroup"

    def __init__(self, name: str, family: str, properties: Any) -> None:
        self.physical_id = name
        self.family = family
        self.properties = dict(properties)

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> CacheParameterGroup:
        family = required(properties, "CacheParameterGroupFamily", cls.TYPE)
        return cls(name.lower(), family, properties.get("Properties") or {})

    @classmethod
    def update_resource(
        cls, original: CacheParameterGroup, name: str, properties: Any, account_id: str, region_name: str
    ) -> CacheParameterGroup:
        original.properties = dict(properties.get("Properties") or {})
        return original
