"""The actions an experiment can take, through the AWS API so both targets share them.

ECS, RDS and ElastiCache calls go to AWS or to the local emulator (whose realizer turns them into the same
fault on local processes); `scaling.suspend`/`scaling.resume` hold a service's task count for a run through
Application Auto Scaling's SuspendedState, as AWS FIS users do. Network faults in front of Postgres and Redis go to the built-in fault proxy on
the local target, and to AWS FIS where an equivalent exists (`devenv.failover.fis`) on AWS. An action the
target cannot perform (AWS answers that the resource is in the wrong state for it) is `skipped`, with AWS's
reason; any other refusal fails the experiment's run (exit 2) after its rollbacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devenv.failover.aws_calls import ActionFailed, CannotPerform, Outcome, aws_call
from devenv.failover.target import Target
from devenv.targets import scaling


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WaitArgs(Args):
    seconds: float = Field(gt=0, le=600)


class ServiceArgs(Args):
    service: Literal["proxy", "dispatcher"]
    timeout_s: float = Field(120, gt=0, le=900, description="how long to wait for the end state")


class StopTaskArgs(ServiceArgs):
    reason: str = "failover experiment"


class DeployArgs(ServiceArgs):
    wait: bool = Field(True, description="wait until every old task is replaced")


class DesiredCountArgs(ServiceArgs):
    count: int = Field(ge=0, le=10)


class ScalingArgs(Args):
    service: Literal["proxy", "dispatcher"]


class DbFailoverArgs(Args):
    cluster: str | None = Field(None, description="DB cluster identifier [the stack's only cluster]")
    fallback: Literal["none", "reboot-writer"] = Field(
        "none", description="when the cluster has no replica to fail over to, reboot the writer instead"
    )


class DbRebootArgs(Args):
    instance: str | None = Field(None, description="DB instance identifier [the cluster's writer]")


class CacheRebootArgs(Args):
    cluster: str | None = Field(None, description="cache cluster id [the replication group's first member]")
    nodes: list[str] = Field(default_factory=lambda: ["0001"], min_length=1)


class CacheFailoverArgs(Args):
    replication_group: str | None = None
    node_group: str = "0001"


class AlarmWaitArgs(Args):
    name_contains: str = Field(min_length=1, description="the alarm(s) whose name holds this")
    state: Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
    within_s: float = Field(
        gt=0, le=3600, description="CloudWatch seconds to wait at most (divided by the target's time_scale)"
    )


class EndpointArgs(Args):
    endpoint: Literal["aurora", "elasticache"]


class RefuseArgs(EndpointArgs):
    seconds: float = Field(gt=0, le=600)


class LatencyArgs(EndpointArgs):
    ms: float = Field(gt=0, le=60_000)
    seconds: float | None = Field(None, gt=0, le=600, description="how long [until cleared]")


ActionFn = Callable[[Target, Any], Outcome]


@dataclass(frozen=True)
class Action:
    args: type[Args]
    run: ActionFn
    injects: bool  # changes the system (a rollback-worthy fault), as opposed to waiting


def validate_args(action: str, args: dict[str, Any]) -> Args:
    """The action's arguments, validated (ValueError names the argument)."""
    try:
        return ACTIONS[action].args.model_validate(args)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or action}: {err['msg']}" for err in exc.errors()
        )
        raise ValueError(f"arguments of {action}: {problems}") from None


def run_action(target: Target, action: str, args: dict[str, Any]) -> Outcome:
    spec = ACTIONS[action]
    return spec.run(target, spec.args.model_validate(args))


def _wait_until(check: Callable[[], str | None], timeout_s: float, what: str) -> None:
    """Poll `check` (None when done, else what is still missing) until done or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    missing: str | None = what
    while time.monotonic() < deadline:
        missing = check()
        if missing is None:
            return
        time.sleep(0.25)
    raise ActionFailed(f"{what}: not reached in {timeout_s:.0f} s ({missing})")


# ---- ECS ----------------------------------------------------------------------------------------------


def _running_tasks(target: Target, service: str) -> list[str]:
    ecs = target.client("ecs")
    return list(
        aws_call(ecs.list_tasks, cluster=target.cluster, serviceName=service, desiredStatus="RUNNING")[
            "taskArns"
        ]
    )


def _healthy_targets(target: Target, service: str) -> int | None:
    """Healthy targets of the service's target group (None for a service without a load balancer)."""
    ecs = target.client("ecs")
    described = aws_call(ecs.describe_services, cluster=target.cluster, services=[service])["services"]
    groups = [lb["targetGroupArn"] for lb in (described[0].get("loadBalancers") or []) if described]
    if not groups:
        return None
    health = aws_call(target.client("elbv2").describe_target_health, TargetGroupArn=groups[0])
    return sum(
        1 for d in health["TargetHealthDescriptions"] if d.get("TargetHealth", {}).get("State") == "healthy"
    )


def _settled(target: Target, service: str, count: int, old: set[str] | None = None) -> str | None:
    """None once the service runs `count` tasks (ECS's runningCount), none of `old` is still running, and
    its target group (if any) has `count` healthy targets; else what is missing."""
    ecs = target.client("ecs")
    described = aws_call(ecs.describe_services, cluster=target.cluster, services=[service])["services"]
    running = int(described[0].get("runningCount", 0)) if described else 0
    if running != count:
        return f"{running} of {count} tasks running"
    if old:
        tasks = aws_call(ecs.describe_tasks, cluster=target.cluster, tasks=sorted(old))["tasks"]
        alive = [t for t in tasks if t.get("lastStatus") != "STOPPED"]
        if alive:
            return f"{len(alive)} old task(s) not stopped yet"
    healthy = _healthy_targets(target, service)
    if healthy is not None and healthy < count:
        return f"{healthy} of {count} targets healthy"
    return None


def stop_task(target: Target, args: StopTaskArgs) -> Outcome:
    tasks = _running_tasks(target, args.service)
    if not tasks:
        raise ActionFailed(f"service {args.service} has no running task to stop")
    victim = tasks[0]
    aws_call(target.client("ecs").stop_task, cluster=target.cluster, task=victim, reason=args.reason)
    return Outcome("done", f"stopped task {victim.rsplit('/', 1)[-1]} of {args.service}", {"task": victim})


def force_new_deployment(target: Target, args: DeployArgs) -> Outcome:
    old = set(_running_tasks(target, args.service))
    ecs = target.client("ecs")
    aws_call(ecs.update_service, cluster=target.cluster, service=args.service, forceNewDeployment=True)
    if args.wait:
        _wait_until(
            lambda: _settled(target, args.service, len(old), old),
            args.timeout_s,
            f"rolling deployment of {args.service}",
        )
    return Outcome("done", f"forced a new deployment of {args.service} ({len(old)} task(s) replaced)")


def set_desired_count(target: Target, args: DesiredCountArgs) -> Outcome:
    ecs = target.client("ecs")
    aws_call(ecs.update_service, cluster=target.cluster, service=args.service, desiredCount=args.count)
    _wait_until(
        lambda: _settled(target, args.service, args.count),
        args.timeout_s,
        f"{args.service} at {args.count} task(s)",
    )
    return Outcome("done", f"{args.service} runs {args.count} task(s)")


# ---- Application Auto Scaling -------------------------------------------------------------------------


def suspend_scaling(target: Target, args: ScalingArgs) -> Outcome:
    """Hold the service's task count for the run, as AWS FIS users do: its scalable target's dynamic
    scaling suspended (SuspendedState), the state before kept for scaling.resume."""
    resource = f"service/{target.cluster}/{args.service}"
    client = target.client("application-autoscaling")
    found = aws_call(scaling.ecs_targets, client=client, resource_ids=[resource])
    if not found:
        return Outcome("skipped", f"{args.service} has no scalable target: nothing scales it")
    target.scaling_before.setdefault(resource, found[0].get("SuspendedState") or scaling.RESUMED)
    aws_call(scaling.set_suspended, client=client, resource_id=resource, state=scaling.SUSPENDED)
    return Outcome("done", f"dynamic scaling of {args.service} suspended for the run (SuspendedState)")


def resume_scaling(target: Target, args: ScalingArgs) -> Outcome:
    resource = f"service/{target.cluster}/{args.service}"
    before = target.scaling_before.pop(resource, None)
    if before is None:
        return Outcome("skipped", f"this run did not suspend the scaling of {args.service}")
    client = target.client("application-autoscaling")
    aws_call(scaling.set_suspended, client=client, resource_id=resource, state=before)
    return Outcome("done", f"scaling of {args.service} back as before the run ({before})")


# ---- RDS ----------------------------------------------------------------------------------------------


def _db_cluster(target: Target, name: str | None) -> dict[str, Any]:
    clusters = aws_call(target.client("rds").describe_db_clusters)["DBClusters"]
    if name is not None:
        clusters = [c for c in clusters if c["DBClusterIdentifier"] == name]
    if not clusters:
        raise ActionFailed(f"no DB cluster {name or ''} on the {target.name} target".replace("  ", " "))
    return dict(clusters[0])


def _writer(cluster: dict[str, Any]) -> str:
    for member in cluster.get("DBClusterMembers", []):
        if member.get("IsClusterWriter"):
            return str(member["DBInstanceIdentifier"])
    raise ActionFailed(f"DB cluster {cluster['DBClusterIdentifier']} has no writer instance")


def reboot_db_instance(target: Target, args: DbRebootArgs) -> Outcome:
    instance = args.instance or _writer(_db_cluster(target, None))
    aws_call(target.client("rds").reboot_db_instance, DBInstanceIdentifier=instance)
    return Outcome("done", f"rebooted DB instance {instance}", {"instance": instance})


def failover_db_cluster(target: Target, args: DbFailoverArgs) -> Outcome:
    cluster = _db_cluster(target, args.cluster)
    name = cluster["DBClusterIdentifier"]
    try:
        aws_call(target.client("rds").failover_db_cluster, DBClusterIdentifier=name)
    except CannotPerform as exc:
        if args.fallback == "none":
            raise
        rebooted = reboot_db_instance(target, DbRebootArgs(instance=_writer(cluster)))
        return Outcome(
            "done",
            f"failover of {name} refused ({exc}); no replica to promote, so {rebooted.detail} instead",
            {"failover_refused": str(exc), **rebooted.data},
        )
    return Outcome("done", f"failed over DB cluster {name}")


# ---- ElastiCache --------------------------------------------------------------------------------------


def _replication_group(target: Target, name: str | None) -> dict[str, Any]:
    client = target.client("elasticache")
    kwargs = {"ReplicationGroupId": name} if name else {}
    groups = aws_call(client.describe_replication_groups, **kwargs)["ReplicationGroups"]
    if not groups:
        raise ActionFailed(f"no ElastiCache replication group on the {target.name} target")
    return dict(groups[0])


def reboot_cache_cluster(target: Target, args: CacheRebootArgs) -> Outcome:
    member = args.cluster or str(_replication_group(target, None)["MemberClusters"][0])
    client = target.client("elasticache")
    aws_call(client.reboot_cache_cluster, CacheClusterId=member, CacheNodeIdsToReboot=args.nodes)
    return Outcome("done", f"rebooted cache cluster {member} nodes {','.join(args.nodes)}")


def test_failover(target: Target, args: CacheFailoverArgs) -> Outcome:
    group = args.replication_group or str(_replication_group(target, None)["ReplicationGroupId"])
    client = target.client("elasticache")
    aws_call(client.test_failover, ReplicationGroupId=group, NodeGroupId=args.node_group)
    return Outcome("done", f"test failover of {group} node group {args.node_group}")


# ---- CloudWatch ---------------------------------------------------------------------------------------


def wait_for_alarm(target: Target, args: AlarmWaitArgs) -> Outcome:
    """Hold the method until every alarm whose name holds `name_contains` is in `state` (a fault kept up
    until CloudWatch has seen it), at most `within_s` CloudWatch seconds. Not reaching it is no error here:
    the run goes on, and an alarm criterion (`reaches`) judges it."""
    timeout_s = args.within_s / target.api.time_scale()
    deadline = time.monotonic() + timeout_s
    cloudwatch = target.client("cloudwatch")
    states: dict[str, str] = {}
    while True:
        alarms = [
            alarm
            for page in aws_call(lambda: list(cloudwatch.get_paginator("describe_alarms").paginate()))
            for alarm in page["MetricAlarms"]
            if args.name_contains in alarm["AlarmName"]
        ]
        if not alarms:
            raise ActionFailed(
                f"no alarm whose name holds {args.name_contains!r} on the {target.name} target"
            )
        states = {alarm["AlarmName"]: alarm["StateValue"] for alarm in alarms}
        if all(state == args.state for state in states.values()):
            return Outcome("done", f"{', '.join(states)} in {args.state}", {"reached": True})
        if time.monotonic() >= deadline:
            return Outcome(
                "done",
                f"not every alarm was in {args.state} after {timeout_s:.0f} s: "
                + ", ".join(f"{name} {state}" for name, state in states.items()),
                {"reached": False},
            )
        time.sleep(0.25)


# ---- network faults -----------------------------------------------------------------------------------


def _network(target: Target, kind: str, args: EndpointArgs) -> Outcome:
    if target.name == "aws":
        from devenv.failover import fis

        return fis.run(target, kind, args.model_dump())
    from devenv.services import faultproxy

    control = target.fault_proxy(args.endpoint)
    if kind == "cut":
        answer = faultproxy.cut(control)
        return Outcome("done", f"cut the open connections of {args.endpoint}", {"status": answer})
    if kind == "refuse":
        assert isinstance(args, RefuseArgs)
        answer = faultproxy.refuse(control, args.seconds)
        return Outcome("done", f"{args.endpoint} refuses new connections for {args.seconds:g} s")
    if kind == "latency":
        assert isinstance(args, LatencyArgs)
        answer = faultproxy.add_latency(control, args.ms, args.seconds)
        span = f"for {args.seconds:g} s" if args.seconds else "until cleared"
        return Outcome("done", f"{args.endpoint} adds {args.ms:g} ms latency {span}", {"status": answer})
    answer = faultproxy.clear(control)
    return Outcome("done", f"cleared the faults of {args.endpoint}", {"status": answer})


def _wait(target: Target, args: WaitArgs) -> Outcome:
    time.sleep(args.seconds)
    return Outcome("done", f"waited {args.seconds:g} s")


def _skippable(fn: Callable[[Target, Any], Outcome]) -> Callable[[Target, Any], Outcome]:
    def run(target: Target, args: Any) -> Outcome:
        try:
            return fn(target, args)
        except CannotPerform as exc:
            return Outcome("skipped", f"the {target.name} target cannot perform this: {exc}")

    return run


ACTIONS: dict[str, Action] = {
    "wait": Action(WaitArgs, _wait, injects=False),
    "ecs.stop_task": Action(StopTaskArgs, _skippable(stop_task), injects=True),
    "ecs.force_new_deployment": Action(DeployArgs, _skippable(force_new_deployment), injects=True),
    "ecs.set_desired_count": Action(DesiredCountArgs, _skippable(set_desired_count), injects=True),
    "scaling.suspend": Action(ScalingArgs, suspend_scaling, injects=True),
    "scaling.resume": Action(ScalingArgs, resume_scaling, injects=True),
    "rds.failover_db_cluster": Action(DbFailoverArgs, _skippable(failover_db_cluster), injects=True),
    "rds.reboot_db_instance": Action(DbRebootArgs, _skippable(reboot_db_instance), injects=True),
    "elasticache.reboot_cache_cluster": Action(
        CacheRebootArgs, _skippable(reboot_cache_cluster), injects=True
    ),
    "elasticache.test_failover": Action(CacheFailoverArgs, _skippable(test_failover), injects=True),
    "cloudwatch.wait_for_alarm": Action(AlarmWaitArgs, wait_for_alarm, injects=False),
    "network.cut": Action(EndpointArgs, _skippable(lambda t, a: _network(t, "cut", a)), injects=True),
    "network.refuse": Action(RefuseArgs, _skippable(lambda t, a: _network(t, "refuse", a)), injects=True),
    "network.latency": Action(LatencyArgs, _skippable(lambda t, a: _network(t, "latency", a)), injects=True),
    "network.clear": Action(EndpointArgs, _skippable(lambda t, a: _network(t, "clear", a)), injects=True),
}
