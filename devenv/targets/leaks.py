"""After a local destroy: does any resource the stack held still exist? Asked through the AWS API."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

Check = Callable[[Callable[[str], Any], str], bool]


def _gone(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ClientError:
        return True
    return False


def _db_cluster(c: Callable[[str], Any], pid: str) -> bool:
    return not _gone(lambda: c("rds").describe_db_clusters(DBClusterIdentifier=pid))


def _replication_group(c: Callable[[str], Any], pid: str) -> bool:
    return not _gone(lambda: c("elasticache").describe_replication_groups(ReplicationGroupId=pid))


def _secret(c: Callable[[str], Any], pid: str) -> bool:
    return not _gone(lambda: c("secretsmanager").get_secret_value(SecretId=pid))


def _parameter(c: Callable[[str], Any], pid: str) -> bool:
    return not _gone(lambda: c("ssm").get_parameter(Name=pid))


def _alarm(c: Callable[[str], Any], pid: str) -> bool:
    return bool(c("cloudwatch").describe_alarms(AlarmNames=[pid])["MetricAlarms"])


def _vpc(c: Callable[[str], Any], pid: str) -> bool:
    return not _gone(lambda: c("ec2").describe_vpcs(VpcIds=[pid]))


def _subnet(c: Callable[[str], Any], pid: str) -> bool:
    return not _gone(lambda: c("ec2").describe_subnets(SubnetIds=[pid]))


def _security_group(c: Callable[[str], Any], pid: str) -> bool:
    return not _gone(lambda: c("ec2").describe_security_groups(GroupIds=[pid]))


def _load_balancer(c: Callable[[str], Any], pid: str) -> bool:
    return not _gone(lambda: c("elbv2").describe_load_balancers(LoadBalancerArns=[pid]))


def _target_group(c: Callable[[str], Any], pid: str) -> bool:
    return not _gone(lambda: c("elbv2").describe_target_groups(TargetGroupArns=[pid]))


def _ecs_cluster(c: Callable[[str], Any], pid: str) -> bool:
    clusters = c("ecs").describe_clusters(clusters=[pid])["clusters"]
    return any(cluster["status"] == "ACTIVE" for cluster in clusters)


def _scalable_target(c: Callable[[str], Any], pid: str) -> bool:
    resource_id, _dimension, namespace = pid.split("|")
    targets = c("application-autoscaling").describe_scalable_targets(
        ServiceNamespace=namespace, ResourceIds=[resource_id]
    )
    return bool(targets["ScalableTargets"])


CHECKS: Mapping[str, Check] = {
    "AWS::RDS::DBCluster": _db_cluster,
    "AWS::ElastiCache::ReplicationGroup": _replication_group,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::SSM::Parameter": _parameter,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::EC2::VPC": _vpc,
    "AWS::EC2::Subnet": _subnet,
    "AWS::EC2::SecurityGroup": _security_group,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": _load_balancer,
    "AWS::ElasticLoadBalancingV2::TargetGroup": _target_group,
    "AWS::ECS::Cluster": _ecs_cluster,
    "AWS::ApplicationAutoScaling::ScalableTarget": _scalable_target,
}


def leaked(make_client: Callable[[str], Any], held: Iterable[Mapping[str, str]]) -> list[str]:
    """`logical id (type) physical id` of every checkable resource that still exists."""
    return [
        f"{r['logical_id']} ({r['type']}) {r['physical_id']}"
        for r in held
        if r["type"] in CHECKS and r["physical_id"] and CHECKS[r["type"]](make_client, r["physical_id"])
    ]
