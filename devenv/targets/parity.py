"""`devenv parity`: each resource of the template with its fate on the local cloud.

Fates: `emulated` (a model stores it where the AWS API reads it back), `realized` (local processes make
it real; `realized_by` names what, filled in by the realizer), `recorded` (stored only: no network
isolation or IAM enforcement locally), `unsupported` (no model: a strict deploy refuses the template).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Types stored but with no local effect, and why.
RECORDED: dict[str, str] = {
    "AWS::EC2::VPC": "no network isolation locally",
    "AWS::EC2::Subnet": "no network isolation locally",
    "AWS::EC2::RouteTable": "no network isolation locally",
    "AWS::EC2::Route": "no network isolation locally",
    "AWS::EC2::SubnetRouteTableAssociation": "no network isolation locally",
    "AWS::EC2::NatGateway": "no network isolation locally",
    "AWS::EC2::EIP": "no network isolation locally",
    "AWS::EC2::InternetGateway": "no network isolation locally",
    "AWS::EC2::VPCGatewayAttachment": "no network isolation locally",
    "AWS::EC2::SecurityGroup": "no network isolation locally",
    "AWS::EC2::SecurityGroupIngress": "no network isolation locally",
    "AWS::EC2::SecurityGroupEgress": "no network isolation locally",
    "AWS::IAM::Role": "IAM is not enforced locally",
    "AWS::IAM::Policy": "IAM is not enforced locally",
    "AWS::IAM::ManagedPolicy": "IAM is not enforced locally",
    "AWS::CloudWatch::Dashboard": "stored (GetDashboard)",
    "AWS::CertificateManager::Certificate": "stored (DescribeCertificate); never issued",
    "AWS::ECR::Repository": "stored; images are not pulled from it locally",
    "AWS::Logs::LogGroup": "stored; local processes log to files",
    "AWS::CDK::Metadata": "CDK version report",
}

# Notes on emulated types whose local behaviour matters.
EMULATED_NOTES: dict[str, str] = {
    "AWS::RDS::DBCluster": "database and master user created on the local Postgres; AWS/RDS metrics "
    "(DatabaseConnections, CPUUtilization, an approximated ServerlessDatabaseCapacity) from it",
    "AWS::RDS::DBInstance": "cluster member record",
    "AWS::ElastiCache::ReplicationGroup": "endpoints advertised at the local ElastiCache endpoint; AWS/ElastiCache "
    "metrics per member cluster from the local Redis's INFO",
    "AWS::SecretsManager::Secret": "generated values readable via GetSecretValue",
    "AWS::SecretsManager::SecretTargetAttachment": "host/port/engine merged into the secret",
    "AWS::SSM::Parameter": "readable via GetParameter",
    "AWS::S3::BucketPolicy": "conditional Deny statements are not enforced (moto ignores conditions)",
    "AWS::S3::Bucket": "moto's S3 on the emulator's endpoint (load test results are read from it)",
    "AWS::ServiceDiscovery::PrivateDnsNamespace": "stored (ListNamespaces); its names do not resolve locally",
    "AWS::ServiceDiscovery::Service": "stored (ListServices); no instances are registered locally",
    "AWS::CloudWatch::Alarm": "evaluated as CloudWatch does (periods, M of N, TreatMissingData, the metric math "
    "the stack uses) from the metric data in the emulator, divided in time by time_scale; state changes in "
    "DescribeAlarmHistory; actions: Application Auto Scaling policies and SNS topics",
}

# What makes each runtime resource real locally (devenv.realize.realizer and the services it starts).
REALIZED_BY: dict[str, str] = {
    "AWS::ECS::Cluster": "the realizer's reconcile loop (devenv.realize.realizer)",
    "AWS::ECS::Service": "one supervised task per ECS task (a local process, or a container with --runtime docker), "
    "replaced, scaled and rolled like the ECS scheduler (a task the ALB finds unhealthy after the health-check "
    "grace period is replaced, the replacement started first); AWS/ECS CPU and memory metrics from the task "
    "processes",
    "AWS::ECS::TaskDefinition": "image -> local entry point (python -m llmproxy ...), or the image itself with "
    "--runtime docker; environment and secrets resolved from the emulator, container port -> a free host port, "
    "stopTimeout honoured",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "Caddy, the ALB mirror (HTTP on alb_port, HTTPS on alb_https_port); "
    "AWS/ApplicationELB metrics from its access log and health checks",
    "AWS::ElasticLoadBalancingV2::Listener": "a Caddy server per listener (forward, or the HTTP->HTTPS redirect)",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "Caddy reverse_proxy with the group's health check and thresholds "
    "(the interval divided by time_scale, at least 1 s); targets follow the tasks; deregistration delay honoured; "
    "fails open when no target is healthy",
    "AWS::RDS::DBCluster": "local Postgres 18 behind a fault proxy at the cluster endpoint (aurora_port)",
    "AWS::RDS::DBInstance": "reboot_db_instance / failover stop and restart the local Postgres (fault_hold_s)",
    "AWS::ApplicationAutoScaling::ScalableTarget": "the emulator's target tracking keeps the ECS service's desired "
    "count within min/max, honouring SuspendedState (autoscaling = false suspends it)",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "target tracking as Application Auto Scaling does it: the "
    "AlarmHigh/AlarmLow alarms AWS creates, scaling only when they fire, with the policy's cooldowns (divided by "
    "time_scale); each change a scaling activity (DescribeScalingActivities)",
    "AWS::ElastiCache::ReplicationGroup": "local Redis (TLS with devenv's CA when encrypted in transit) behind a "
    "fault proxy at the endpoint (elasticache_port); reboot_cache_cluster restarts it empty",
}


@dataclass(frozen=True)
class MetricSource:
    """Metrics the realized stack publishes into the local CloudWatch: what measures them, how close to AWS."""

    namespace: str
    metrics: str
    dimensions: str
    measured_from: str
    versus_aws: str


# The README's "CloudWatch metrics" table, shown by `devenv parity` (devenv.realize.*_metrics publish them).
METRICS: tuple[MetricSource, ...] = (
    MetricSource(
        "AWS/ApplicationELB",
        "RequestCount, TargetResponseTime, HTTPCode_Target_2XX/3XX/4XX/5XX_Count",
        "LoadBalancer; LoadBalancer, TargetGroup",
        "the ALB mirror's access log (one line per request)",
        "exact per request; percentiles from each sample's distribution to 0.1 ms",
    ),
    MetricSource(
        "AWS/ApplicationELB",
        "HTTPCode_ELB_4XX/5XX_Count",
        "LoadBalancer",
        "statuses the mirror made itself (no target, a target that never answered)",
        "exact; the mirror answers 503 where an ALB may say 502",
    ),
    MetricSource(
        "AWS/ApplicationELB",
        "RequestCountPerTarget",
        "TargetGroup; LoadBalancer, TargetGroup",
        "a sample's requests / healthy targets (registered ones when none is healthy)",
        "AWS's definition, per sample; Sum over a minute",
    ),
    MetricSource(
        "AWS/ApplicationELB",
        "HealthyHostCount, UnHealthyHostCount",
        "LoadBalancer, TargetGroup",
        "the mirror's health-check state machine (interval divided by time_scale, at least 1 s)",
        "targets in their initial checks count in neither",
    ),
    MetricSource(
        "AWS/ECS",
        "CPUUtilization, MemoryUtilization",
        "ClusterName, ServiceName",
        "each task's process tree (or container): busy cores of its CPU units, resident memory of its memory",
        "a statistic set per sample over the tasks; CPU may exceed 100 % where Fargate would throttle",
    ),
    MetricSource(
        "AWS/RDS",
        "DatabaseConnections",
        "DBClusterIdentifier",
        "Postgres's client backends",
        "exact for the local Postgres (shared by every cluster)",
    ),
    MetricSource(
        "AWS/RDS",
        "CPUUtilization",
        "DBClusterIdentifier",
        "the Postgres processes' CPU",
        "a percent of this machine's cores, not of the instance's capacity",
    ),
    MetricSource(
        "AWS/RDS",
        "ServerlessDatabaseCapacity",
        "DBClusterIdentifier",
        "the Postgres CPU",
        "approximated: one ACU per quarter core busy, rounded up to 0.5, within Min..MaxCapacity",
    ),
    MetricSource(
        "AWS/ElastiCache",
        "CurrConnections, Evictions, DatabaseMemoryUsagePercentage, EngineCPUUtilization",
        "CacheClusterId; CacheClusterId, CacheNodeId",
        "the local Redis's INFO",
        "one Redis serves every member cluster (all report the same); memory of maxmemory, else of the "
        "node type's memory less the 25 % reserved",
    ),
)


@dataclass(frozen=True)
class Fate:
    logical_id: str
    type: str
    fate: str
    realized_by: str | None
    note: str


def supported_types() -> set[str]:
    """The types the emulator's CloudFormation has a model for: moto's plus devenv's (no patching here)."""
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel

    from devenv.emulator.models import MODELS

    moto_models = [m for m in CloudFormationModel.__subclasses__() if m.__module__.startswith("moto.")]
    models = [*moto_models, *MODELS]  # as the emulator lists them (devenv.emulator.stacks.model_list)
    return {model.cloudformation_type() for model in models} | set(parsing.NULL_MODELS)


def fates(template: Mapping[str, Any], supported: set[str]) -> list[Fate]:
    result = []
    for logical_id, body in template.get("Resources", {}).items():
        kind = body.get("Type", "")
        if kind not in supported:
            result.append(Fate(logical_id, kind, "unsupported", None, "no model: a strict deploy refuses it"))
        elif kind in REALIZED_BY:
            result.append(Fate(logical_id, kind, "realized", REALIZED_BY[kind], EMULATED_NOTES.get(kind, "")))
        elif kind in RECORDED:
            result.append(Fate(logical_id, kind, "recorded", None, RECORDED[kind]))
        else:
            result.append(Fate(logical_id, kind, "emulated", None, EMULATED_NOTES.get(kind, "")))
    return result


def summary(entries: list[Fate]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.fate] = counts.get(entry.fate, 0) + 1
    return {
        "resources": [asdict(e) for e in entries],
        "counts": counts,
        "unsupported": counts.get("unsupported", 0),
        "metrics": [asdict(m) for m in METRICS],
    }
