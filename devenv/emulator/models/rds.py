"""Aurora PostgreSQL (Serverless v2) on the local Postgres.

`AWS::RDS::DBCluster` creates the master user and database on the local server (see `local_backends`),
and the cluster's endpoint, as DescribeDBClusters and `Endpoint.Address/Port` report it, is that server.
`AWS::RDS::DBInstance` members (db.serverless) join the cluster through the RDS backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

from moto.ec2.exceptions import InvalidSubnetIdError
from moto.ec2.models import ec2_backends
from moto.rds.models import DBCluster as MotoDBCluster
from moto.rds.models import DBInstance as MotoDBInstance
from moto.rds.models import DBSubnetGroup as MotoDBSubnetGroup
from moto.rds.models import RDSBackend, rds_backends

from devenv.emulator import local_backends
from devenv.emulator.models.base import (
    DevenvModel,
    ModelHooks,
    TemplateError,
    as_bool,
    as_int,
    moto_create,
    required,
    tag_list,
)

SUPPORTED_ENGINES = {"aurora-postgresql"}


def backend(account_id: str, region_name: str) -> RDSBackend:
    return rds_backends[account_id][region_name]


class LocalDBCluster(MotoDBCluster):
    """moto's cluster, whose endpoints are the local Postgres (or the pass-through in front of it)."""

    def __init__(self, backend: RDSBackend, advertised: local_backends.Endpoint, **kwargs: Any) -> None:
        super().__init__(backend, **kwargs)
        self.advertised = advertised
        self.port = advertised.port

    @property
    def endpoint(self) -> str:
        return self.advertised.host

    @property
    def reader_endpoint(self) -> str:
        return self.advertised.host


def _cluster_settings(properties: Any) -> dict[str, Any]:
    scaling = properties.get("ServerlessV2ScalingConfiguration")
    return {
        "engine_version": properties.get("EngineVersion"),
        "backup_retention_period": as_int(properties.get("BackupRetentionPeriod")) or 1,
        "deletion_protection": as_bool(properties.get("DeletionProtection", False)),
        "serverless_v2_scaling_configuration": (
            {"MinCapacity": float(scaling["MinCapacity"]), "MaxCapacity": float(scaling["MaxCapacity"])}
            if scaling
            else None
        ),
    }


class DBCluster(DevenvModel):
    """AWS::RDS::DBCluster (aurora-postgresql). Ref is the cluster identifier."""

    TYPE = "AWS::RDS::DBCluster"
    NAME_PROPERTY = "DBClusterIdentifier"

    def __init__(self, account_id: str, region_name: str, cluster: LocalDBCluster) -> None:
        self.account_id = account_id
        self.region_name = region_name
        self.cluster = cluster
        self.physical_id = cluster.db_cluster_identifier

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        cluster = self.cluster
        return {
            "Endpoint.Address": lambda: cluster.endpoint,
            "Endpoint.Port": lambda: str(cluster.port),
            "ReadEndpoint.Address": lambda: cluster.reader_endpoint,
            "DBClusterArn": lambda: cluster.db_cluster_arn,
            "DBClusterResourceId": lambda: cluster.db_cluster_resource_id,
        }

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> DBCluster:
        engine = required(properties, "Engine", cls.TYPE)
        if engine not in SUPPORTED_ENGINES:
            raise TemplateError(
                f"AWS::RDS::DBCluster: engine {engine!r} has no local realization (only aurora-postgresql)"
            )
        if as_bool(properties.get("ManageMasterUserPassword", False)):
            raise TemplateError(
                "AWS::RDS::DBCluster: ManageMasterUserPassword is not emulated; use a generated secret "
                "(Credentials.fromGeneratedSecret) instead"
            )
        username = required(properties, "MasterUsername", cls.TYPE)
        password = required(properties, "MasterUserPassword", cls.TYPE)
        database = properties.get("DatabaseName")
        identifier = (properties.get("DBClusterIdentifier") or name).lower()
        rds = backend(account_id, region_name)
        advertised = local_backends.postgres_endpoint()
        local_backends.provision_database(username, password, database)
        cluster = LocalDBCluster(
            rds,
            advertised,
            db_cluster_identifier=identifier,
            engine=engine,
            master_username=username,
            master_user_password=password,
            database_name=database,
            db_subnet_group_name=properties.get("DBSubnetGroupName"),
            vpc_security_group_ids=properties.get("VpcSecurityGroupIds") or [],
            storage_encrypted=as_bool(properties.get("StorageEncrypted", False)),
            copy_tags_to_snapshot=as_bool(properties.get("CopyTagsToSnapshot", False)),
            db_cluster_parameter_group_name=properties.get("DBClusterParameterGroupName"),
            tags=tag_list(properties),
            **_cluster_settings(properties),
        )
        rds.clusters[identifier] = cluster
        return cls(account_id, region_name, cluster)

    @classmethod
    def update_resource(
        cls, original: DBCluster, name: str, properties: Any, account_id: str, region_name: str
    ) -> DBCluster:
        """Scaling, version, backups and the master password change in place; a new database name replaces it."""
        cluster = original.cluster
        if (
            properties.get("DatabaseName") != cluster.database_name
            or (properties.get("DBClusterIdentifier") or cluster.db_cluster_identifier).lower()
            != cluster.db_cluster_identifier
        ):
            original.delete(account_id, region_name)
            return cls.create_resource(name, properties, account_id, region_name)
        for setting, value in _cluster_settings(properties).items():
            if value is not None:
                setattr(cluster, setting, value)
        password = required(properties, "MasterUserPassword", cls.TYPE)
        local_backends.provision_database(cluster.master_username, password, cluster.database_name)  # type: ignore[arg-type]
        cluster.master_user_password = password
        return original

    def delete(self, account_id: str, region_name: str) -> None:
        backend(account_id, region_name).delete_db_cluster(self.cluster.db_cluster_identifier)
        local_backends.drop_database(self.cluster.master_username, self.cluster.database_name)  # type: ignore[arg-type]


class DBInstance(ModelHooks, MotoDBInstance):
    """AWS::RDS::DBInstance: a cluster member (db.serverless) joins its cluster; others are moto's instances."""

    TYPE = "AWS::RDS::DBInstance"
    NAME_PROPERTY = "DBInstanceIdentifier"

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> MotoDBInstance:
        cluster_id = properties.get("DBClusterIdentifier")
        if not cluster_id:
            return moto_create(MotoDBInstance, name, properties, account_id, region_name, **kwargs)
        rds = backend(account_id, region_name)
        cluster = rds.clusters.get(cluster_id.lower())
        if cluster is None:
            raise TemplateError(f"AWS::RDS::DBInstance: DB cluster {cluster_id!r} does not exist")
        return rds.create_db_instance(
            {
                "db_instance_identifier": (properties.get("DBInstanceIdentifier") or name).lower(),
                "db_instance_class": required(properties, "DBInstanceClass", cls.TYPE),
                "engine": properties.get("Engine") or cluster.engine,
                "db_cluster_identifier": cluster.db_cluster_identifier,
                "promotion_tier": as_int(properties.get("PromotionTier")) or 1,
                "publicly_accessible": as_bool(properties.get("PubliclyAccessible", False)),
                "auto_minor_version_upgrade": as_bool(properties.get("AutoMinorVersionUpgrade", True)),
                "availability_zone": properties.get("AvailabilityZone"),
                "tags": tag_list(properties),
            }
        )

    @classmethod
    def update_resource(
        cls, original: MotoDBInstance, name: str, properties: Any, account_id: str, region_name: str
    ) -> MotoDBInstance:
        if properties.get("DBInstanceClass"):
            original.db_instance_class = properties["DBInstanceClass"]
        return original


class DBSubnetGroup(DevenvModel):
    """AWS::RDS::DBSubnetGroup in moto's RDS; Ref is the group name (moto's own model returns an object).

    Subnets of an imported VPC do not exist in the emulator's EC2: they are recorded by id.
    """

    TYPE = "AWS::RDS::DBSubnetGroup"
    NAME_PROPERTY = "DBSubnetGroupName"

    def __init__(self, group: MotoDBSubnetGroup) -> None:
        self.group = group
        self.physical_id = group.name

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> DBSubnetGroup:
        kind = cls.TYPE
        description = required(properties, "DBSubnetGroupDescription", kind)
        subnets = [
            _subnet(account_id, region_name, subnet_id)
            for subnet_id in required(properties, "SubnetIds", kind)
        ]
        name = (properties.get("DBSubnetGroupName") or name).lower()
        group = backend(account_id, region_name).create_subnet_group(
            name, description, subnets, tag_list(properties)
        )
        return cls(group)

    @classmethod
    def update_resource(
        cls, original: DBSubnetGroup, name: str, properties: Any, account_id: str, region_name: str
    ) -> DBSubnetGroup:
        original.group.description = properties.get("DBSubnetGroupDescription", "")
        original.group.subnets = [
            _subnet(account_id, region_name, subnet_id) for subnet_id in properties.get("SubnetIds", [])
        ]
        return original

    def delete(self, account_id: str, region_name: str) -> None:
        rds = backend(account_id, region_name)
        if self.physical_id in rds.subnet_groups:
            rds.delete_subnet_group(self.physical_id)


def _subnet(account_id: str, region_name: str, subnet_id: str) -> Any:
    """The EC2 subnet, or a record of one the emulator does not hold (an imported VPC's)."""
    ec2 = ec2_backends[account_id][region_name]
    try:
        return ec2.get_subnet(subnet_id)
    except InvalidSubnetIdError:
        return SimpleNamespace(
            id=subnet_id, availability_zone=f"{region_name}a", vpc_id="(imported, not emulated)"
        )


def find_target(account_id: str, region_name: str, target_type: str, target_id: str) -> dict[str, Any]:
    """The connection fields a SecretTargetAttachment merges into its secret, as AWS writes them."""
    rds = backend(account_id, region_name)
    if target_type == "AWS::RDS::DBCluster":
        cluster = rds.clusters.get(target_id.lower())
        if cluster is None:
            raise TemplateError(f"SecretTargetAttachment: DB cluster {target_id!r} does not exist")
        fields: dict[str, Any] = {
            "engine": "postgres",
            "host": cluster.endpoint,
            "port": int(cluster.port),
            "dbClusterIdentifier": cluster.db_cluster_identifier,
        }
        if cluster.database_name:
            fields["dbname"] = cluster.database_name
        return fields
    raise TemplateError(
        f"SecretTargetAttachment: target type {target_type!r} is not emulated (only AWS::RDS::DBCluster)"
    )
