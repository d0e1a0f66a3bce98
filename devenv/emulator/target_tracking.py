"""Target tracking as Application Auto Scaling does it, inside the emulator.

A TargetTrackingScaling policy on an ECS service (PutScalingPolicy, or the template's
AWS::ApplicationAutoScaling::ScalingPolicy) gets the CloudWatch alarms AWS creates for it, named and shaped
as AWS does: `TargetTracking-<resourceId>-AlarmHigh-<uuid>`, 3 of 3 one-minute datapoints above the target,
and `...-AlarmLow-<uuid>`, 15 of 15 below 90 % of it (none with DisableScaleIn); listed in the policy's
Alarms, replaced when the policy is updated (its ARN stays), deleted with it. Their actions invoke the
policy (devenv.emulator.alarms runs them, again each minute while an alarm stays in ALARM), and the policy
sets the service's desired count in moto's ECS, which the scheduler turns into tasks:
- out: capacity x metric / target, rounded up; during the scale-out cooldown the capacity the previous
  scale-out added counts as already there (AWS: "calculated as part of the desired capacity");
- in: only when every target tracking policy of the scalable target that may scale in has its low alarm
  in ALARM, to the largest of their proposals; never within the scale-in cooldown (a scale-out ends it)
  nor while an ECS deployment replaces tasks;
- within MinCapacity..MaxCapacity, never while SuspendedState suspends that direction; cooldowns (default
  300 s) divided by time_scale. The metric value is the newest datapoint the alarm evaluated.
A manual desired count therefore stands until an alarm in ALARM says otherwise. Each change is a scaling
activity (DescribeScalingActivities, which moto lacks) in AWS's wording; a blocked one is a not-scaled
activity (IncludeNotScaledActivities) with AWS's reason code, recorded once per alarm and code rather
than each minute. StepScaling policies are stored, not applied (their alarms' actions say so).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from moto.applicationautoscaling.exceptions import AWSValidationException
from moto.applicationautoscaling.models import (
    ApplicationAutoscalingBackend,
    FakeApplicationAutoscalingPolicy,
    FakeScalableTarget,
    applicationautoscaling_backends,
)
from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
from moto.cloudwatch.models import Alarm, cloudwatch_backends
from moto.ecs.models import Service

from devenv.emulator import scheduler, time_scale
from devenv.emulator.models.monitoring import metric_queries

HIGH_PERIODS, LOW_PERIODS, LOW_FRACTION = 3, 15, 0.9
DEFAULT_COOLDOWN_S = 300
ACTIVITIES_KEEP = 1000  # per region (AWS keeps six weeks)
LATEST_VALUE = "devenv_latest_value"  # set on an alarm by each evaluation: its newest datapoint
# predefined metric type -> (namespace, metric name, statistic, unit)
PREDEFINED = {
    "ECSServiceAverageCPUUtilization": ("AWS/ECS", "CPUUtilization", "Average", "Percent"),
    "ECSServiceAverageMemoryUtilization": ("AWS/ECS", "MemoryUtilization", "Average", "Percent"),
    "ALBRequestCountPerTarget": ("AWS/ApplicationELB", "RequestCountPerTarget", "Sum", None),
}


@dataclass
class Cooldowns:
    """What a scalable target remembers between invocations (real epoch seconds)."""

    out_until: float = 0.0
    out_base: int = 0  # the capacity before the scale-out that started the cooldown
    in_until: float = 0.0
    last_not_scaled: tuple[str, str] | None = None


@dataclass(frozen=True)
class Change:
    desired: int


@dataclass(frozen=True)
class NotScaled:
    code: str
    detail: dict[str, int]


def is_policy(arn: str) -> bool:
    """An Application Auto Scaling policy ARN (EC2 Auto Scaling's have no `:resource/`)."""
    return ":autoscaling:" in arn and ":scalingPolicy:" in arn and ":resource/" in arn


def _as_bool(value: Any) -> bool:
    return str(value).lower() == "true"


def _cooldown_s(config: dict[str, Any], key: str) -> float:
    return time_scale.seconds(float(config.get(key, DEFAULT_COOLDOWN_S)))


# -- the policy's alarms ------------------------------------------------------------------------------


def _metric(resource_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """put_metric_alarm arguments for the policy's metric."""
    predefined = config.get("PredefinedMetricSpecification")
    if predefined:
        kind = predefined.get("PredefinedMetricType")
        if kind not in PREDEFINED:
            raise AWSValidationException(
                f"Predefined metric type {kind} is not supported for ECS services; use one of {', '.join(PREDEFINED)}"
            )
        namespace, name, stat, unit = PREDEFINED[kind]
        if kind == "ALBRequestCountPerTarget":
            label = str(predefined.get("ResourceLabel") or "")
            parts = label.split("/")
            if len(parts) != 6 or parts[0] != "app" or parts[3] != "targetgroup":
                raise AWSValidationException(
                    f"ResourceLabel {label!r} must be app/<load-balancer-name>/<id>/targetgroup/<target-group-name>/<id>"
                )
            dimensions = [{"Name": "TargetGroup", "Value": "/".join(parts[3:])}]
        else:
            _, cluster, service = resource_id.split("/")
            dimensions = [
                {"Name": "ClusterName", "Value": cluster},
                {"Name": "ServiceName", "Value": service},
            ]
        return {
            "namespace": namespace,
            "metric_name": name,
            "statistic": stat,
            "unit": unit,
            "dimensions": dimensions,
        }
    custom = config.get("CustomizedMetricSpecification")
    if not custom:
        raise AWSValidationException(
            "A target tracking policy needs PredefinedMetricSpecification or CustomizedMetricSpecification"
        )
    if custom.get("Metrics"):
        metrics = [
            {**m, "MetricStat": {**m["MetricStat"], "Period": 60}} if m.get("MetricStat") else m
            for m in custom["Metrics"]
        ]
        return {"metric_data_queries": metric_queries(metrics), "dimensions": []}
    return {
        "namespace": custom.get("Namespace"),
        "metric_name": custom.get("MetricName"),
        "statistic": custom.get("Statistic", "Average"),
        "unit": custom.get("Unit"),
        "dimensions": custom.get("Dimensions") or [],
    }


def managed_alarms(
    original: Callable[[FakeApplicationAutoscalingPolicy], None],
) -> Callable[[FakeApplicationAutoscalingPolicy], None]:
    """moto's alarm creation for a policy; an ECS target tracking policy gets the alarms AWS creates."""

    def create_alarms(policy: FakeApplicationAutoscalingPolicy) -> None:
        if policy.policy_type != "TargetTrackingScaling" or policy.service_namespace != "ecs":
            original(policy)
        else:
            _create_alarms(policy)

    return create_alarms


def _create_alarms(policy: FakeApplicationAutoscalingPolicy) -> None:
    config = policy.target_tracking_scaling_policy_configuration or {}
    if config.get("TargetValue") is None:
        raise AWSValidationException("TargetTrackingScalingPolicyConfiguration needs a TargetValue")
    target = float(config["TargetValue"])
    metric = _metric(policy.resource_id, config)
    backend = applicationautoscaling_backends[policy.account_id][policy.region_name]
    key = type(policy).formulate_key(
        policy.service_namespace, policy.resource_id, policy.scalable_dimension, policy.policy_name
    )
    previous = backend.policies.get(key)
    if previous is not None:  # an update: the policy keeps its ARN, its alarms are replaced
        policy._guid, policy.policy_arn = previous._guid, previous.policy_arn
        previous.delete_alarms(policy.account_id, policy.region_name)
    action = f"{policy.policy_arn}:createdBy/{uuid.uuid4()}"
    cloudwatch = cloudwatch_backends[policy.account_id][policy.region_name]
    shapes = [("AlarmHigh", "GreaterThanThreshold", HIGH_PERIODS, target)]
    if not _as_bool(config.get("DisableScaleIn")):
        shapes.append(("AlarmLow", "LessThanThreshold", LOW_PERIODS, target * LOW_FRACTION))
    policy.alarms = [
        cloudwatch.put_metric_alarm(
            name=f"TargetTracking-{policy.resource_id}-{kind}-{uuid.uuid4()}",
            comparison_operator=operator,
            evaluation_periods=periods,
            period=60,
            threshold=threshold,
            description=f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {action}.",
            alarm_actions=[action],
            **{"namespace": None, "metric_name": None, "statistic": None, **metric},
        )
        for kind, operator, periods, threshold in shapes
    ]


# -- invoking a policy --------------------------------------------------------------------------------


def _backends() -> Iterator[ApplicationAutoscalingBackend]:
    for account in list(applicationautoscaling_backends.values()):
        yield from list(account.values())


def _find(policy_arn: str) -> tuple[ApplicationAutoscalingBackend, FakeApplicationAutoscalingPolicy] | None:
    for backend in _backends():
        for policy in list(backend.policies.values()):
            if policy.policy_arn == policy_arn:
                return backend, policy
    return None


def _bounds(target: FakeScalableTarget) -> tuple[int, int]:
    return int(target.min_capacity or 0), int(target.max_capacity or 0)


def _cooldowns(target: FakeScalableTarget) -> Cooldowns:
    found: Cooldowns | None = getattr(target, "_devenv_cooldowns", None)
    if found is None:
        found = Cooldowns()
        target._devenv_cooldowns = found  # type: ignore[attr-defined]
    return found


def _service(backend: ApplicationAutoscalingBackend, resource_id: str) -> Service | None:
    _, cluster, name = resource_id.split("/")
    service: Service | None = backend.ecs_backend.services.get(f"{cluster}:{name}")
    return service


def _deploying(backend: ApplicationAutoscalingBackend, service: Service) -> bool:
    """Tasks of an older deployment still run: ECS is replacing them."""
    primary = service.deployments[0]["id"] if service.deployments else None
    return any(
        t.deployment_id != primary
        for t in scheduler.service_tasks(backend.ecs_backend, service)
        if t.desired_status == "RUNNING"
    )


def _scale_out(
    target: FakeScalableTarget, config: dict[str, Any], current: int, value: float | None, now: float
) -> Change | NotScaled | None:
    cooldowns = _cooldowns(target)
    cooling = now < cooldowns.out_until
    base = cooldowns.out_base if cooling else current
    wanted = math.ceil(base * value / float(config["TargetValue"])) if value and base else base + 1
    if wanted <= current:
        return None  # the scale-out within the cooldown already added it
    if current >= _bounds(target)[1]:
        return NotScaled(
            "AlreadyAtMaxCapacity", {"MaxCapacity": _bounds(target)[1], "CurrentCapacity": current}
        )
    if not cooling:
        cooldowns.out_base, cooldowns.out_until = current, now + _cooldown_s(config, "ScaleOutCooldown")
    cooldowns.in_until = 0.0
    return Change(max(_bounds(target)[0], min(_bounds(target)[1], wanted)))


def _scale_in(
    backend: ApplicationAutoscalingBackend,
    policy: FakeApplicationAutoscalingPolicy,
    target: FakeScalableTarget,
    service: Service,
    now: float,
) -> Change | NotScaled | None:
    cooldowns, current = _cooldowns(target), int(service.desired_count)
    if now < cooldowns.in_until:
        return None
    proposals = []
    for other in backend.policies.values():
        config = other.target_tracking_scaling_policy_configuration or {}
        if (
            (other.resource_id, other.scalable_dimension) != (policy.resource_id, policy.scalable_dimension)
            or other.policy_type != "TargetTrackingScaling"
            or _as_bool(config.get("DisableScaleIn"))
        ):
            continue
        low = _low_alarm(other)
        value = getattr(low, LATEST_VALUE, None) if low is not None else None
        if low is None or low.state_value != "ALARM" or value is None:
            return None  # scale in only when every policy agrees
        proposals.append(math.ceil(current * value / float(config["TargetValue"])))
    wanted = max(proposals, default=current)
    if current <= _bounds(target)[0]:
        return NotScaled(
            "AlreadyAtMinCapacity", {"MinCapacity": _bounds(target)[0], "CurrentCapacity": current}
        )
    if wanted >= current:
        return NotScaled("AlreadyAtDesiredCapacity", {"CurrentCapacity": current})
    if _deploying(backend, service):
        return NotScaled("TargetServicePutResourceAsUnscalable", {"CurrentCapacity": current})
    config = policy.target_tracking_scaling_policy_configuration or {}
    cooldowns.in_until = now + _cooldown_s(config, "ScaleInCooldown")
    return Change(max(_bounds(target)[0], min(_bounds(target)[1], wanted)))


def _low_alarm(policy: FakeApplicationAutoscalingPolicy) -> Alarm | None:
    cloudwatch = cloudwatch_backends[policy.account_id][policy.region_name]
    name = next((a.name for a in policy.alarms if "-AlarmLow-" in a.name), None)
    return cloudwatch.alarms.get(name) if name else None


def invoke(action_arn: str, alarm: Alarm, now: float) -> str | None:
    """An alarm action on a policy; returns what failed (None: executed, whether or not it scaled)."""
    policy_arn = action_arn.split(":createdBy/")[0]
    found = _find(policy_arn)
    if found is None:
        return f"no scaling policy {policy_arn}"
    backend, policy = found
    if policy.policy_type != "TargetTrackingScaling":
        return f"the local cloud applies target tracking policies only, not {policy.policy_type}"
    target = backend.targets.get(policy.scalable_dimension, {}).get(policy.resource_id)
    service = _service(backend, policy.resource_id) if policy.service_namespace == "ecs" else None
    if target is None or service is None:
        return f"no scalable ECS service {policy.resource_id}"
    config = policy.target_tracking_scaling_policy_configuration or {}
    state: dict[str, Any] = target.suspended_state if isinstance(target.suspended_state, dict) else {}
    suspended = {k: _as_bool(v) for k, v in state.items()}
    current = int(service.desired_count)
    decision: Change | NotScaled | None
    if "-AlarmHigh-" in alarm.name:
        if suspended.get("DynamicScalingOutSuspended"):
            return None
        decision = _scale_out(target, config, current, getattr(alarm, LATEST_VALUE, None), now)
    else:
        if suspended.get("DynamicScalingInSuspended"):
            return None
        decision = _scale_in(backend, policy, target, service, now)
    cause = f"monitor alarm {alarm.name} in state ALARM triggered policy {policy.policy_name}"
    if isinstance(decision, Change) and decision.desired != current:
        _cooldowns(target).last_not_scaled = None
        backend.ecs_backend.update_service(
            {"cluster": service.cluster_name, "service": service.name, "desired_count": decision.desired}
        )
        _record(
            backend,
            policy,
            Description=f"Setting desired count to {decision.desired}.",
            Cause=cause,
            StatusCode="Successful",
            StatusMessage=f"Successfully set desired count to {decision.desired}. Change successfully fulfilled by ecs.",
            done=True,
        )
    elif isinstance(decision, NotScaled) and _cooldowns(target).last_not_scaled != (
        alarm.name,
        decision.code,
    ):
        _cooldowns(target).last_not_scaled = (alarm.name, decision.code)
        _record(
            backend,
            policy,
            Description="Attempting to scale due to alarm triggered",
            Cause=cause,
            StatusCode="Failed",
            NotScaledReasons=[{"Code": decision.code, **decision.detail}],
        )
    return None


# -- scaling activities -------------------------------------------------------------------------------


def _activities(backend: ApplicationAutoscalingBackend) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] | None = getattr(backend, "_devenv_activities", None)
    if items is None:
        items = []
        backend._devenv_activities = items  # type: ignore[attr-defined]
    return items


def _record(
    backend: ApplicationAutoscalingBackend,
    policy: FakeApplicationAutoscalingPolicy,
    done: bool = False,
    **fields: Any,
) -> None:
    """One activity; a done one ends as it starts (ECS takes the new desired count at once)."""
    items = _activities(backend)
    started = time.time()
    items.append(
        {
            "ActivityId": str(uuid.uuid4()),
            "ServiceNamespace": policy.service_namespace,
            "ResourceId": policy.resource_id,
            "ScalableDimension": policy.scalable_dimension,
            "StartTime": started,
            **({"EndTime": started} if done else {}),
            **fields,
        }
    )
    del items[:-ACTIVITIES_KEEP]


def describe_scaling_activities(self: ApplicationAutoScalingResponse) -> str:
    """DescribeScalingActivities: newest first, filtered, up to MaxResults (50) a page."""
    self._validate_params()
    params = json.loads(self.body or "{}")
    namespace, resource, dimension = (
        params.get(k) for k in ("ServiceNamespace", "ResourceId", "ScalableDimension")
    )
    if not namespace:
        raise AWSValidationException(
            "1 validation error detected: Value null at 'serviceNamespace' failed to satisfy constraint: Member must not be null"
        )
    include_not_scaled = bool(params.get("IncludeNotScaledActivities"))
    limit = max(1, min(50, int(params.get("MaxResults") or 50)))
    items = [
        a
        for a in reversed(_activities(self.applicationautoscaling_backend))
        if a["ServiceNamespace"] == namespace
        and (not resource or a["ResourceId"] == resource)
        and (not dimension or a["ScalableDimension"] == dimension)
        and (include_not_scaled or "NotScaledReasons" not in a)
    ]
    token = params.get("NextToken")
    offset = int(token) if token and str(token).isdigit() else 0
    more = offset + limit < len(items)
    return json.dumps(
        {
            "ScalingActivities": items[offset : offset + limit],
            "NextToken": str(offset + limit) if more else None,
        }
    )


def deleting_policies(original: Callable[..., None]) -> Callable[..., None]:
    """As on AWS, deregistering a scalable target deletes its scaling policies (and their alarms)."""

    def deregister_scalable_target(
        self: ApplicationAutoscalingBackend, namespace: str, r_id: str, dimension: str
    ) -> None:
        original(self, namespace, r_id, dimension)
        for key, policy in list(self.policies.items()):
            if (policy.service_namespace, policy.resource_id, policy.scalable_dimension) == (
                namespace,
                r_id,
                dimension,
            ):
                policy.delete_alarms(self.account_id, self.region_name)
                del self.policies[key]

    return deregister_scalable_target
