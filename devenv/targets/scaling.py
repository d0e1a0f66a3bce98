"""Dynamic scaling switched off and on as an AWS user (or AWS FIS) does it: RegisterScalableTarget with a
SuspendedState, through Application Auto Scaling's API, on either target. The local cloud's target
tracking honours it as AWS does (devenv.emulator.target_tracking)."""

from __future__ import annotations

from typing import Any

DIMENSION = "ecs:service:DesiredCount"
SUSPENDED = {
    "DynamicScalingInSuspended": True,
    "DynamicScalingOutSuspended": True,
    "ScheduledScalingSuspended": True,
}
RESUMED = dict.fromkeys(SUSPENDED, False)


def ecs_targets(client: Any, resource_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The ECS services' scalable targets (all, or those named: `service/<cluster>/<service>`)."""
    found = client.describe_scalable_targets(
        ServiceNamespace="ecs", **({"ResourceIds": resource_ids} if resource_ids else {})
    )
    return [t for t in found["ScalableTargets"] if t["ScalableDimension"] == DIMENSION]


def set_suspended(client: Any, resource_id: str, state: dict[str, bool]) -> None:
    client.register_scalable_target(
        ServiceNamespace="ecs", ResourceId=resource_id, ScalableDimension=DIMENSION, SuspendedState=state
    )


def suspend_all(client: Any) -> list[str]:
    """Suspend every ECS scalable target; returns their resource ids."""
    resources = [t["ResourceId"] for t in ecs_targets(client)]
    for resource in resources:
        set_suspended(client, resource, SUSPENDED)
    return resources
