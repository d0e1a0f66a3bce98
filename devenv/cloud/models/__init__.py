"""The CloudFormation models devenv adds to (or replaces in) moto, in one registry.

moto finds models through `CloudFormationModel.__subclasses__()`, which lists direct subclasses only;
`devenv.cloud.stacks.install` appends this registry to moto's list instead, so later entries win.
"""

from __future__ import annotations

from typing import Any

from devenv.cloud.models.autoscaling import ScalableTarget, ScalingPolicy
from devenv.cloud.models.certificates import Certificate
from devenv.cloud.models.ecs import Service, TaskDefinition
from devenv.cloud.models.elasticache import (
    CacheCluster,
    CacheParameterGroup,
    CacheReplicationGroup,
    CacheSubnetGroup,
)
from devenv.cloud.models.load_balancing import CdkMetadata, LoadBalancer, TargetGroup
from devenv.cloud.models.monitoring import Alarm
from devenv.cloud.models.network import SecurityGroupEgress
from devenv.cloud.models.parameters import Parameter
from devenv.cloud.models.rds import DBCluster, DBInstance, DBSubnetGroup
from devenv.cloud.models.secrets import Secret, SecretTargetAttachment
from devenv.cloud.models.storage import BucketPolicy

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
    BucketPolicy,
    TaskDefinition,
    Service,
    LoadBalancer,
    TargetGroup,
    CdkMetadata,
    SecurityGroupEgress,
    Parameter,
]
