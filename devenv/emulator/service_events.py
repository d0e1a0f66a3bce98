"""ECS service events (`describe_services` -> `services[].events`) in AWS's wording, newest first.

ECS keeps the 100 most recent events of a service, each with an `id`, a `createdAt` and a `message`.
The messages below are the ones AWS writes (its "service event messages" and what real services log):

- `(service S) has started N tasks: (task ID) (task ID).`            the scheduler started tasks
- `(service S) has stopped N running tasks: (task ID).`              the scheduler stopped tasks (scale-in,
  `(service S) stopped N pending tasks.`                              deployment); not a StopTask or a crash
- `(service S) registered N targets in (target-group ARN)`           reported by the realizer, as ECS
- `(service S) deregistered N targets in (target-group ARN)`         registers a task with its target group
- `(service S) has begun draining connections on N tasks.`           (no full stop: AWS writes none)
- `(service S) (task ID) (port P) is unhealthy in (target-group ARN) due to (reason R).`
- `(service S) (deployment ecs-svc/ID) deployment completed.`
- `(service S) has reached a steady state.`

Steady state: running == desired, every task serving, one deployment, nothing still stopping. It is
written when the service enters it and, as AWS repeats a message whose cause persists, again every
6 hours while it holds (AWS omits duplicates "until either the cause is resolved or six hours passes");
that interval is divided by `DEVENV_TIME_SCALE` like every other period the emulator applies.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from moto.ecs.models import Service

from devenv.emulator import time_scale

MAX_EVENTS = 100  # ECS keeps the 100 most recent
STEADY_STATE_REPEAT_S = 6 * 3600.0


def record(service: Service, message: str) -> None:
    """Add an event at the head of the service's events, keeping the newest MAX_EVENTS. Any other event
    ends the current steady-state announcement, so the next steady state is written after it (an ALB
    event can arrive while the service's counts already hold, and a reader waits for steady state last)."""
    event: dict[str, Any] = {"id": str(uuid.uuid4()), "createdAt": datetime.now(UTC), "message": message}
    service.events.insert(0, event)
    del service.events[MAX_EVENTS:]
    if message != _steady(service):
        service._devenv_steady_at = None  # type: ignore[attr-defined]


def _steady(service: Service) -> str:
    return f"(service {service.name}) has reached a steady state."


def _tasks(task_ids: list[str]) -> str:
    return " ".join(f"(task {task_id})" for task_id in task_ids)


def started(service: Service, task_ids: list[str]) -> None:
    if task_ids:
        record(service, f"(service {service.name}) has started {len(task_ids)} tasks: {_tasks(task_ids)}.")


def stopped(service: Service, running_ids: list[str], pending: int) -> None:
    """Tasks the scheduler itself stopped (a scale-in or a deployment replacing them)."""
    if running_ids:
        record(
            service,
            f"(service {service.name}) has stopped {len(running_ids)} running tasks: {_tasks(running_ids)}.",
        )
    if pending:
        record(service, f"(service {service.name}) stopped {pending} pending tasks.")


def registered(service: Service, target_group_arn: str) -> None:
    record(service, f"(service {service.name}) registered 1 targets in (target-group {target_group_arn})")


def deregistered(service: Service, target_group_arn: str) -> None:
    """A task leaves its target group: deregistered, and its connections drain (two events, as AWS logs)."""
    record(service, f"(service {service.name}) deregistered 1 targets in (target-group {target_group_arn})")
    record(service, f"(service {service.name}) has begun draining connections on 1 tasks.")


def unhealthy(service: Service, task_id: str, port: int, target_group_arn: str, reason: str) -> None:
    record(
        service,
        f"(service {service.name}) (task {task_id}) (port {port}) is unhealthy in "
        f"(target-group {target_group_arn}) due to (reason {reason}).",
    )


TARGET_EVENTS = ("registered", "deregistered", "unhealthy")


def target_event(
    service: Service, event: str, task_id: str, target_group_arn: str, port: int, reason: str | None
) -> None:
    """What the ALB side reported for one of the service's tasks (one of TARGET_EVENTS)."""
    if event == "registered":
        registered(service, target_group_arn)
    elif event == "deregistered":
        deregistered(service, target_group_arn)
    elif event == "unhealthy":
        unhealthy(service, task_id, port, target_group_arn, reason or "Health checks failed")
    else:
        raise ValueError(f"event must be one of {', '.join(TARGET_EVENTS)}, not {event!r}")


def settled(service: Service, deployment_id: str, rollout_completed: bool, steady: bool) -> None:
    """Deployment completed (once per deployment) and steady state (on entering it, then every
    STEADY_STATE_REPEAT_S / time scale while it holds)."""
    if rollout_completed and getattr(service, "_devenv_completed_deployment", None) != deployment_id:
        service._devenv_completed_deployment = deployment_id  # type: ignore[attr-defined]
        record(service, f"(service {service.name}) (deployment {deployment_id}) deployment completed.")
    if not steady:
        service._devenv_steady_at = None  # type: ignore[attr-defined]
        return
    now = time.monotonic()
    last: float | None = getattr(service, "_devenv_steady_at", None)
    if last is None or now - last >= time_scale.seconds(STEADY_STATE_REPEAT_S):
        service._devenv_steady_at = now  # type: ignore[attr-defined]
        record(service, _steady(service))
