"""Live reload of the local stack: a saved change to the proxy's source rolls its ECS services.

A change under the llmproxy package the native tasks run (debounced: a save of several files is one
change) becomes `ecs.update_service(forceNewDeployment=True)` on every service whose task definition runs
the llmproxy image, the very call `aws ecs update-service --force-new-deployment` makes. The emulator's
scheduler then rolls the tasks as ECS does (within minimumHealthyPercent / maximumPercent, new targets in
rotation only once the ALB's health checks pass, old ones drained), so the ALB keeps answering. A new
task that does not start is reported with its reason and the end of its log, while the old tasks, which
the roll stops only once new ones serve, keep serving.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import watchfiles

from devenv.realize.tasks import LLMPROXY_REPOSITORIES, repository_name
from devenv.runtime import logfiles

POLL_S = 0.25
LOG_LINES = 15  # of a failed task's log: enough for a traceback's end


@dataclass(frozen=True)
class RolledService:
    """An ECS service whose tasks run the watched source."""

    cluster: str
    name: str


@dataclass
class Rollout:
    """One service's forced new deployment, followed until it completes, fails or is superseded."""

    service: RolledService
    deployment_id: str
    old_tasks: set[str]
    began: float = field(default_factory=time.monotonic)
    reported_failures: set[str] = field(default_factory=set)
    outcome: str | None = None  # "rolled", "failed", "superseded"


def rolled_services(ecs: Any) -> list[RolledService]:
    """Every service whose essential container runs the llmproxy image (natively: `python -m llmproxy`)."""
    found = []
    for cluster in ecs.list_clusters()["clusterArns"]:
        arns = ecs.list_services(cluster=cluster)["serviceArns"]
        for start in range(0, len(arns), 10):
            for service in ecs.describe_services(cluster=cluster, services=arns[start : start + 10])[
                "services"
            ]:
                definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
                containers = definition["taskDefinition"]["containerDefinitions"]
                if any(
                    repository_name(c["image"]) in LLMPROXY_REPOSITORIES
                    for c in containers
                    if c.get("essential", True)
                ):
                    found.append(RolledService(cluster, service["serviceName"]))
    return sorted(found, key=lambda s: s.name)


def file_changes(source: Path, debounce_ms: int, stop: threading.Event) -> Iterator[list[str]]:
    """Each debounced batch of changed files under `source` (relative paths, sorted); ends when `stop`
    is set. Caches, editors' swap files and VCS folders are ignored (watchfiles' default filter).

    A batch ends once the files stayed unchanged for `debounce_ms` (watchfiles' `step`); edits that never
    pause are cut into batches of at most ten times that (its `debounce`)."""
    quiet_ms = max(debounce_ms, 50)
    for batch in watchfiles.watch(
        source,
        debounce=quiet_ms * 10,
        step=quiet_ms,
        stop_event=stop,
        watch_filter=watchfiles.DefaultFilter(),
    ):
        yield sorted({str(Path(path).relative_to(source)) for _, path in batch})


def start_rollout(ecs: Any, service: RolledService) -> Rollout:
    """Force a new deployment of `service`, as `aws ecs update-service --force-new-deployment` does."""
    old = set(_task_ids(ecs, service, "RUNNING"))
    updated = ecs.update_service(cluster=service.cluster, service=service.name, forceNewDeployment=True)
    return Rollout(service, updated["service"]["deployments"][0]["id"], old)


def check(ecs: Any, logs_dir: Path, rollout: Rollout) -> list[str]:
    """One look at a rollout: lines worth printing (a new task that failed, the roll done), and its
    outcome once it has one."""
    service = ecs.describe_services(cluster=rollout.service.cluster, services=[rollout.service.name])[
        "services"
    ][0]
    primary = service["deployments"][0]
    name = rollout.service.name
    lines = []
    for task in _new_stopped_tasks(ecs, rollout):
        rollout.reported_failures.add(task["taskArn"])
        task_id = task["taskArn"].rsplit("/", 1)[-1]
        codes = [c.get("exitCode") for c in task.get("containers", []) if c.get("exitCode") is not None]
        exit_text = f" (exit code {codes[0]})" if codes else ""
        lines.append(
            f"{name}: new task {task_id[:8]} failed to start{exit_text}: {task.get('stoppedReason')}"
        )
        lines += [f"  | {line}" for line in _log_tail(logs_dir / f"{name}-{task_id[:8]}.log")]
        rollout.outcome = "failed"
    if rollout.outcome == "failed":
        serving = sorted(rollout.old_tasks & set(_task_ids(ecs, rollout.service, "RUNNING")))
        lines.append(
            f"{name}: the old tasks keep serving ({', '.join(t[:8] for t in serving) or 'none left'}); "
            "fix the error and save again to roll anew (meanwhile the deployment circuit breaker, when "
            "the service has one, stops retrying after a few failed starts)"
        )
        return lines
    if primary["id"] != rollout.deployment_id:  # a newer roll (a later change) took over
        rollout.outcome = "superseded"
        return lines
    running = set(_task_ids(ecs, rollout.service, "RUNNING"))
    if primary.get("rolloutState") == "COMPLETED" and running and not running & rollout.old_tasks:
        rollout.outcome = "rolled"
        lines.append(
            f"{name}: rolled in {time.monotonic() - rollout.began:.1f} s: "
            f"new tasks {', '.join(sorted(t[:8] for t in running))} replace "
            f"{', '.join(sorted(t[:8] for t in rollout.old_tasks)) or 'none'}"
        )
    return lines


def watch(
    ecs: Any,
    source: Path,
    logs_dir: Path,
    debounce_ms: int,
    stop: threading.Event,
    say: Callable[[str], None],
) -> None:
    """Until `stop` is set: roll the llmproxy services on each change under `source`, saying what
    happens. A change while a roll is under way starts a newer one (the older is superseded)."""
    changes: queue.Queue[list[str]] = queue.Queue()

    def collect() -> None:
        for batch in file_changes(source, debounce_ms, stop):
            changes.put(batch)

    threading.Thread(target=collect, name="file-changes", daemon=True).start()
    services = rolled_services(ecs)
    if not services:
        say("no ECS service runs the llmproxy image: nothing to roll")
    say(f"watching {source} for changes; rolling {', '.join(s.name for s in services)} on each")
    rollouts: list[Rollout] = []
    while not stop.is_set():
        try:
            batch = changes.get(timeout=POLL_S)
        except queue.Empty:
            batch = []
        if batch:
            shown = ", ".join(batch[:3]) + (f" and {len(batch) - 3} more" if len(batch) > 3 else "")
            say(f"changed: {shown}; rolling {', '.join(s.name for s in services)}")
            rollouts = [start_rollout(ecs, service) for service in services]
        for rollout in rollouts:
            for line in check(ecs, logs_dir, rollout):
                say(line)
        rollouts = [r for r in rollouts if r.outcome is None]


def _task_ids(ecs: Any, service: RolledService, desired_status: str) -> list[str]:
    arns = ecs.list_tasks(cluster=service.cluster, serviceName=service.name, desiredStatus=desired_status)[
        "taskArns"
    ]
    return [arn.rsplit("/", 1)[-1] for arn in arns]


def _new_stopped_tasks(ecs: Any, rollout: Rollout) -> list[dict[str, Any]]:
    """Tasks of the rollout's deployment that ended on their own (did not start, or crashed)."""
    arns = ecs.list_tasks(
        cluster=rollout.service.cluster, serviceName=rollout.service.name, desiredStatus="STOPPED"
    )["taskArns"]
    if not arns:
        return []
    tasks = ecs.describe_tasks(cluster=rollout.service.cluster, tasks=arns[:100])["tasks"]
    return [
        t
        for t in tasks
        if t.get("startedBy", rollout.deployment_id) == rollout.deployment_id
        and t["taskArn"].rsplit("/", 1)[-1] not in rollout.old_tasks
        and t.get("stopCode") == "EssentialContainerExited"
        and t["taskArn"] not in rollout.reported_failures
    ]


def _log_tail(path: Path) -> list[str]:
    """The end of a task's log since its start marker (what it printed before it died)."""
    if not path.is_file():
        return [f"(no log at {path})"]
    return [line.rstrip("\n") for line in logfiles.tail_lines(path, LOG_LINES)]
