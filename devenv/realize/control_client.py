"""The realizer's side of the emulator's control API (`devenv.emulator.control`), without importing moto."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def post(endpoint: str, path: str, body: dict[str, Any], timeout_s: float = 5.0) -> None:
    """POST JSON to `/_devenv/<path>`; raises OSError when the emulator does not take it."""
    request = urllib.request.Request(
        f"{endpoint}/_devenv/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout_s):
        pass


def report_task(endpoint: str, task_arn: str, body: dict[str, Any]) -> None:
    """A task's real status (lastStatus, healthStatus, stoppedReason, exitCode), as the ECS agent reports it."""
    post(endpoint, f"ecs/tasks/{task_arn.rsplit('/', 1)[-1]}/status", body)


def report_target_event(
    endpoint: str, task_arn: str, event: str, target_group_arn: str, port: int, reason: str | None = None
) -> None:
    """What the ALB side did with a task's target (registered, deregistered, unhealthy), as ECS logs it."""
    body = {"event": event, "targetGroupArn": target_group_arn, "port": port, "reason": reason}
    post(endpoint, f"ecs/tasks/{task_arn.rsplit('/', 1)[-1]}/target-event", body)


def report_target_health(endpoint: str, target_group_arn: str, dial: str, state: str, detail: str) -> None:
    """What the ALB mirror's health checks saw of a target (HOST:PORT)."""
    host, port = dial.rsplit(":", 1)
    body = {
        "targetGroupArn": target_group_arn,
        "id": host,
        "port": int(port),
        "state": state,
        "detail": detail,
    }
    post(endpoint, "elbv2/target-health", body)


def events_after(endpoint: str, seq: int) -> list[dict[str, Any]]:
    """Faults asked of the emulator since event `seq` ([] when it does not answer)."""
    try:
        with urllib.request.urlopen(f"{endpoint}/_devenv/events?after={seq}", timeout=5) as response:
            return list(json.loads(response.read())["events"])
    except OSError:
        return []


def ecs_digest(endpoint: str) -> str | None:
    """The emulator's digest of what the realizer reads of ECS (devenv.emulator.scheduler.digest); None
    when it does not answer."""
    try:
        with urllib.request.urlopen(f"{endpoint}/_devenv/ecs/digest", timeout=5) as response:
            return str(json.loads(response.read())["digest"])
    except (OSError, ValueError, KeyError):
        return None


def saved_cloud(endpoint: str) -> dict[str, Any]:
    """What the emulator says of its saved local cloud (devenv.emulator.saved_cloud.status): restored or
    not, the stacks it holds deployed (name: template digest), the problem of a file it set aside.
    Raises OSError when the emulator does not answer. The first call after a start waits while the
    emulator loads its models and restores the saved cloud (seconds on a busy machine)."""
    with urllib.request.urlopen(f"{endpoint}/_devenv/saved-cloud", timeout=120) as response:
        return dict(json.loads(response.read()))


def deployed(endpoint: str, stack: str, template: str) -> None:
    """A deploy of `stack`, its template of digest `template`, finished: the emulator records it and saves."""
    post(endpoint, "saved-cloud", {"stack": stack, "template": template}, timeout_s=60.0)
