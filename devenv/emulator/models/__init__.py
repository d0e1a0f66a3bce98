"""The CloudFormation models devenv adds to (or replaces in) moto, in one registry.

moto finds models through `CloudFormationModel.__subclasses__()`, which lists direct subclasses only;
`devenv.emulator.stacks.model_list` appends this registry to moto's list instead, so later entries win.
"""

from __future__ import annotations

from typing import Any

from devenv.emulator.models.autoscaling import ScalableTarget, ScalingPolicy
from devenv.emulator.models.certificates import Certificate
from devenv.emulator.models.discovery import DiscoveryService, PrivateDnsNamespace
from devenv.emulator.models.ecs import Service, TaskDefinition
from devenv.emulator.models.elasticache import (
    CacheCluster,
    CacheParameterGroup,
    CacheReplicationGroup,
    CacheSubnetGroup,
)
from devenv.emulator.models.load_balancing import CdkMetadata, LoadBalancer, TargetGroup
from devenv.emulator.models.monitoring import Alarm
from devenv.emulator.models.network import SecurityGroupEgress
from devenv.emulator.models.parameters import Parameter
from devenv.emulator.models.rds import DBCluster, DBInstance, DBSubnetGroup
from devenv.emulator.models.secrets import Secret, SecretTargetAttachment
from devenv.emulator.models.storage import Bucket, BucketPolicy

MODELS: list[type[Any]] = [
    Secret,
    SecretTargetAttachment,
    DBCluster,
    DBInstance,
    DBSubnetGroup,
    CacheReplicationGroup,
    CacheCluster,
    CacheSubnetGroup,
    CacheParameterGroup,
    Alarm,
    ScalableTarget,
    ScalingPolicy,
    Certificate,
    Bucket,
    BucketPolicy,
    TaskDefinition,
    Service,
    LoadBalancer,
    TargetGroup,
    CdkMetadata,
    SecurityGroupEgress,
    Parameter,
    PrivateDnsNamespace,
    DiscoveryService,
]
