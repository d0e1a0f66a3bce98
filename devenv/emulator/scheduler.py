"""The ECS service scheduler moto lacks, run inside the emulator.

moto keeps services as records with no tasks. Here each service keeps `desiredCount` tasks of its
primary deployment, a stopped task gets a replacement, and `forceNewDeployment` (or a new task
definition) rolls the tasks within `minimumHealthyPercent` / `maximumPercent`, as ECS does. With the
deployment circuit breaker on, a deployment whose tasks keep failing to start (ECS's threshold: half the
desired count, 3 to 200) fails and stops launching tasks; with rollback, the last completed deployment is
primary again. Locally that deployment's tasks are still running (they were only to be replaced once new
ones served), so they simply stay, where ECS would start fresh tasks of its task definition.

A task its load balancer judges unhealthy (after the service's `healthCheckGracePeriodSeconds`, divided by
time_scale like the ALB mirror's health-check interval) is replaced as ECS documents it ("Amazon ECS
services", since 2023): a replacement starts first when `maximumPercent` leaves room; once the replacement
is HEALTHY the unhealthy task stops ("Task failed ELB health checks in (target-group ...)"); if the
replacement turns unhealthy too, one of the unhealthy tasks stops to get back to `desiredCount`; without
room, an unhealthy task stops first. So a dependency outage that fails every task's health check keeps
them cycling, as on AWS, while the ALB fails open. Not during a rolling deployment (the rollout's own
rules apply then).

Tasks start PROVISIONING; the realizer (which runs the real processes) reports RUNNING, health and
STOPPED through the control API (`devenv.emulator.control`), so `describe_tasks` and `describe_services`
tell the truth about what runs.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.ecs.models import Container, EC2ContainerServiceBackend, Service, Task, ecs_backends
from moto.moto_api._internal import mock_random

from devenv.emulator import service_events, time_scale

_lock = threading.RLock()
STOPPED_KEEP = 50  # stopped tasks kept per cluster for describe_tasks, as ECS keeps them for a while


class LocalTask(Task):
    """A service task whose status is what the realizer reports, not moto's state machine."""

    def __init__(self, backend: EC2ContainerServiceBackend, service: Service, deployment_id: str) -> None:
        cluster = backend._get_cluster(service.cluster_name)
        task_definition = backend.describe_task_definition(service.task_definition)  # type: ignore[arg-type]
        self._local_status = "PROVISIONING"
        self._transitions = [("PROVISIONING", "RUNNING")]
        self._tick = 0
        self._time_progressed = datetime.now()
        self.model_name = "ecs::task"
        self.id = str(mock_random.uuid4())
        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.container_instance_arn = None
        self.desired_status = "RUNNING"
        self.task_definition_arn = task_definition.arn
        self.overrides: dict[str, Any] = {}
        self.containers = [Container(task_definition)]  # type: ignore[abstract]
        self.started_by = deployment_id
        self.tags: list[dict[str, str]] = []
        self.launch_type = "FARGATE"
        self.capacity_provider_name = None
        self.platform_version = "LATEST"
        self.stopped_reason = ""
        self.stop_code: str | None = None
        self.resource_requirements = None
        self.region_name = cluster.region_name
        self._account_id = backend.account_id
        self._backend = backend
        self.attachments: list[dict[str, Any]] = []
        self.group = f"service:{service.name}"
        self.service_name = service.name
        self.deployment_id = deployment_id
        self.health_status = "UNKNOWN"
        self.created_at = datetime.now(UTC)
        self.started_at: datetime | None = None
        self.stopping_at: datetime | None = None
        self.stopped_at: datetime | None = None
        self.cpu = task_definition.cpu
        self.memory = task_definition.memory

    @property
    def status(self) -> str:
        return self._local_status

    @status.setter
    def status(self, value: str) -> None:
        self._local_status = value

    @property
    def last_status(self) -> str:
        return self._local_status

    @last_status.setter
    def last_status(self, value: str) -> None:
        self._local_status = value

    def advance(self) -> None:
        """Nothing: the realizer reports real status."""

    def failing(self, grace_s: float, now: datetime) -> bool:
        """Running, judged UNHEALTHY, and past its health-check grace period: ECS replaces it."""
        return (
            self.desired_status == "RUNNING"
            and self._local_status == "RUNNING"
            and self.health_status == "UNHEALTHY"
            and self.started_at is not None
            and (now - self.started_at).total_seconds() >= grace_s
        )

    def serving(self, behind_load_balancer: bool) -> bool:
        """Counts toward minimumHealthyPercent: running and, behind a load balancer, healthy there."""
        if self.desired_status != "RUNNING" or self._local_status != "RUNNING":
            return False
        return self.health_status == "HEALTHY" if behind_load_balancer else self.health_status != "UNHEALTHY"


def service_tasks(backend: EC2ContainerServiceBackend, service: Service) -> list[LocalTask]:
    return [
        task
        for task in backend.tasks.get(service.cluster_name, {}).values()
        if isinstance(task, LocalTask) and task.service_name == service.name
    ]


def _primary_deployment(service: Service) -> dict[str, Any]:
    if not service.deployments:
        service.deployments = [
            {
                "id": f"ecs-svc/{mock_random.randint(0, 32**12)}",
                "status": "PRIMARY",
                "createdAt": datetime.now(UTC),
                "updatedAt": datetime.now(UTC),
            }
        ]
    deployment: dict[str, Any] = service.deployments[0]
    return deployment


def _start(backend: EC2ContainerServiceBackend, service: Service, deployment_id: str) -> LocalTask:
    task = LocalTask(backend, service, deployment_id)
    backend.tasks.setdefault(service.cluster_name, {})[task.task_arn] = task
    return task


def stop(task: LocalTask, reason: str, code: str = "ServiceSchedulerInitiated") -> None:
    """Ask for a task to stop; it is STOPPED once the realizer says its process ended."""
    if task.desired_status == "STOPPED":
        return
    task.desired_status = "STOPPED"
    task.stopped_reason = reason
    task.stop_code = code
    task.stopping_at = datetime.now(UTC)
    if task.last_status == "PROVISIONING":
        task.last_status = "STOPPED"
        task.stopped_at = task.stopping_at
    else:
        task.last_status = "DEACTIVATING"


def reconcile_service(backend: EC2ContainerServiceBackend, service: Service) -> None:
    """One scheduling pass for a service: start, replace, roll and scale its tasks."""
    tasks = [t for t in service_tasks(backend, service) if t.desired_status == "RUNNING"]
    desired = service.desired_count if service.status == "ACTIVE" else 0
    deployment = _primary_deployment(service)
    primary_id = deployment["id"]
    if deployment.get("taskDefinition") not in (None, service.task_definition):
        # a new task definition is a new deployment
        deployment["id"] = primary_id = f"ecs-svc/{mock_random.randint(0, 32**12)}"
    deployment["taskDefinition"] = service.task_definition
    primary_id = _apply_circuit_breaker(service, deployment)
    failed = getattr(service, "_devenv_failed_deployment", None) == primary_id
    current = [
        t for t in tasks if t.deployment_id == primary_id and t.task_definition_arn == service.task_definition
    ]
    previous = [t for t in tasks if t not in current]
    config = getattr(service, "deployment_configuration", None) or {}
    max_total = max(desired, math.floor(desired * int(config.get("maximumPercent", 200)) / 100))
    min_serving = math.ceil(desired * int(config.get("minimumHealthyPercent", 100)) / 100)
    behind_lb = bool(service.load_balancers)
    started: list[LocalTask] = []
    stopped_running: list[LocalTask] = []
    stopped_pending: list[LocalTask] = []

    def retire(task: LocalTask, reason: str) -> None:
        (stopped_pending if task.last_status == "PROVISIONING" else stopped_running).append(task)
        stop(task, reason)

    def start() -> None:
        if failed:  # the circuit breaker stopped this deployment's launches
            return
        task = _start(backend, service, primary_id)
        current.append(task)
        started.append(task)

    failing = [] if previous else _failing(service, current)
    if failing:
        # An unhealthy task stops once a replacement is healthy (or both are unhealthy): as many as the
        # healthy tasks beyond the desired count that are not failing allow, oldest first.
        healthy = sum(1 for t in current if t not in failing and t.health_status == "HEALTHY")
        replaced = min(len(current) - desired, len(failing), max(0, healthy + len(failing) - desired))
        for task in sorted(failing, key=lambda t: t.created_at)[: max(0, replaced)]:
            retire(task, _unhealthy_reason(service))
            current.remove(task)
            failing.remove(task)
        if failing and desired > len(current) - len(failing) and len(current) >= max_total:
            # no room for a replacement (maximumPercent): stop an unhealthy task first
            task = min(failing, key=lambda t: t.created_at)
            retire(task, _unhealthy_reason(service))
            current.remove(task)
            failing.remove(task)
    # Scale in: the newest extra tasks of the current deployment go first (an unhealthy task keeps a
    # slot for its replacement until it stops).
    healthy_or_new = [t for t in current if t not in failing]
    for task in sorted(healthy_or_new, key=lambda t: t.created_at, reverse=True)[
        : max(0, len(healthy_or_new) - desired)
    ]:
        retire(task, f"Scaling activity initiated by (deployment {primary_id})")
        current.remove(task)
        healthy_or_new.remove(task)
    # Start current-deployment tasks up to desired (unhealthy ones not counted), within maximumPercent
    # while old or unhealthy ones remain.
    if previous:
        room = max_total - len(current) - len(previous)
    else:
        room = max_total - len(current) if failing else desired - len(current)
    for _ in range(max(0, min(desired - len(healthy_or_new), room))):
        start()
    # Retire old tasks while enough tasks keep serving. A new task serves once the load balancer judges
    # it healthy; an old one serves while it runs and is not known to be unhealthy (it may still be in
    # its first health checks: stopping it then would leave no target at all).
    serving = sum(1 for t in current if t.serving(behind_lb)) + sum(1 for t in previous if t.serving(False))
    for task in sorted(previous, key=lambda t: (t.serving(False), t.created_at)):
        if not task.serving(False) or serving - 1 >= min_serving or desired == 0:
            if task.serving(False):
                serving -= 1
            retire(task, f"Deployment {primary_id} replaced this task")
    if previous and not any(t.desired_status == "RUNNING" for t in previous) and len(current) >= desired:
        # old tasks all gone: start what maximumPercent held back
        for _ in range(desired - len(current)):
            start()
    rollout_completed, steady = _update_counts(
        service, service_tasks(backend, service), deployment, behind_lb
    )
    if failed:
        deployment.update(
            rolloutState="FAILED", rolloutStateReason="ECS deployment circuit breaker: tasks failed to start."
        )
    else:
        deployment.pop("rolloutStateReason", None)
    if rollout_completed and not failed:
        service._devenv_last_completed = (primary_id, service.task_definition)  # type: ignore[attr-defined]
    service_events.started(service, [t.id for t in started])
    service_events.stopped(service, [t.id for t in stopped_running], len(stopped_pending))
    if service.status == "ACTIVE":
        service_events.settled(service, primary_id, rollout_completed, steady)


def failure_threshold(desired: int) -> int:
    """ECS's circuit breaker threshold: half the desired count, at least 3 and at most 200."""
    return min(200, max(3, math.ceil(desired * 0.5)))


def _apply_circuit_breaker(service: Service, deployment: dict[str, Any]) -> str:
    """Trip the breaker once the primary deployment's failed tasks reach the threshold: the deployment
    fails; with rollback the last completed one (its id and task definition) is primary again. Returns
    the primary deployment's id."""
    primary_id: str = deployment["id"]
    config = getattr(service, "deployment_configuration", None) or {}
    breaker = config.get("deploymentCircuitBreaker") or {}
    failures = getattr(service, "_devenv_failures", {}).get(primary_id, 0)
    if not breaker.get("enable") or failures < failure_threshold(service.desired_count):
        return primary_id
    if getattr(service, "_devenv_failed_deployment", None) == primary_id:
        return primary_id
    name = service.name
    service_events.record(
        service, f"(service {name}) (deployment {primary_id}) deployment failed: tasks failed to start."
    )
    completed = getattr(service, "_devenv_last_completed", None)
    if breaker.get("rollback") and completed and completed[0] != primary_id:
        service_events.record(service, f"(service {name}) rolling back to deployment {completed[0]}.")
        deployment["id"], service.task_definition = completed
        deployment["taskDefinition"] = service.task_definition
        return str(completed[0])
    service._devenv_failed_deployment = primary_id  # type: ignore[attr-defined]
    return primary_id


def _count_failure(task: LocalTask, healthy: bool = False) -> None:
    """A task of its service's primary deployment failed (ended on its own), or turned healthy, which
    resets the count (ECS's resetOnHealthyTask, on by default)."""
    service = task._backend.services.get(f"{task.cluster_name}:{task.service_name}")
    if service is None or not service.deployments or task.deployment_id != service.deployments[0]["id"]:
        return
    failures: dict[str, int] = service.__dict__.setdefault("_devenv_failures", {})
    failures[task.deployment_id] = 0 if healthy else failures.get(task.deployment_id, 0) + 1


def _failing(service: Service, tasks: list[LocalTask]) -> list[LocalTask]:
    """The tasks ECS would replace for failed health checks (grace period divided by time_scale)."""
    grace_s = time_scale.seconds(float(getattr(service, "health_check_grace_period_seconds", None) or 0))
    now = datetime.now(UTC)
    return [t for t in tasks if t.failing(grace_s, now)]


def _unhealthy_reason(service: Service) -> str:
    """The stoppedReason ECS gives a task it replaces for failed health checks."""
    groups = [lb.get("targetGroupArn") for lb in service.load_balancers or [] if lb.get("targetGroupArn")]
    if groups:
        return f"Task failed ELB health checks in (target-group {groups[0]})"
    return "Task failed container health checks"


def _update_counts(
    service: Service, tasks: list[LocalTask], deployment: dict[str, Any], behind_lb: bool
) -> tuple[bool, bool]:
    """Counts and rollout state as ECS reports them; returns (rollout completed, steady state).

    A rollout completes once the primary deployment's tasks alone run, all serving, and no task of an
    older deployment is still stopping; the service is steady once, in addition, nothing at all is."""
    live = [t for t in tasks if t.desired_status == "RUNNING"]
    stopping = [t for t in tasks if t.desired_status == "STOPPED" and t.last_status != "STOPPED"]
    service.running_count = sum(1 for t in live if t.last_status == "RUNNING")
    service.pending_count = sum(1 for t in live if t.last_status == "PROVISIONING")
    primary_live = [t for t in live if t.deployment_id == deployment["id"]]
    rollout_completed = (
        len(primary_live) == len(live) == service.desired_count
        and all(t.serving(behind_lb) for t in live)
        and all(t.deployment_id == deployment["id"] for t in stopping)
    )
    deployment.update(
        {
            "desiredCount": service.desired_count,
            "runningCount": sum(1 for t in primary_live if t.last_status == "RUNNING"),
            "pendingCount": sum(1 for t in primary_live if t.last_status == "PROVISIONING"),
            "rolloutState": "COMPLETED" if rollout_completed else "IN_PROGRESS",
            "updatedAt": datetime.now(UTC),
        }
    )
    return rollout_completed, rollout_completed and not stopping


def _prune_stopped(backend: EC2ContainerServiceBackend) -> None:
    for cluster_tasks in backend.tasks.values():
        stopped = [
            arn for arn, t in cluster_tasks.items() if isinstance(t, LocalTask) and t.last_status == "STOPPED"
        ]
        for arn in stopped[: max(0, len(stopped) - STOPPED_KEEP)]:
            del cluster_tasks[arn]


def reconcile(backend: EC2ContainerServiceBackend) -> None:
    """A scheduling pass over every service of a backend (cheap; run on each ECS call)."""
    with _lock:
        for service in list(backend.services.values()):
            if service.task_definition and service.deployment_controller.get("type", "ECS") == "ECS":
                reconcile_service(backend, service)
        _prune_stopped(backend)


def digest() -> str:
    """A digest of what the realizer reads of ECS (every service's counts and wiring, every task's
    statuses), after a scheduling pass: while it stays the same, so do its reads (its idle passes cost
    one request instead of seven)."""
    picture: list[tuple[Any, ...]] = []
    with _lock:
        for backend in _all_backends():
            reconcile(backend)  # as the realizer's reads would: the scheduler moves on each ECS call
            for key, service in sorted(backend.services.items()):
                wiring = (service.load_balancers, service.service_registries, service.task_definition)
                picture.append((key, service.status, service.desired_count, service.running_count, wiring))
            for cluster, tasks in sorted(backend.tasks.items()):
                for arn, task in sorted(tasks.items()):
                    statuses = (task.desired_status, task.last_status, getattr(task, "health_status", None))
                    picture.append((cluster, arn, statuses))
    return hashlib.sha256(repr(picture).encode()).hexdigest()[:16]


def find_task(task_id: str) -> LocalTask | None:
    for backend in _all_backends():
        for cluster_tasks in backend.tasks.values():
            for arn, task in cluster_tasks.items():
                if isinstance(task, LocalTask) and (arn == task_id or arn.endswith("/" + task_id)):
                    return task
    return None


def stop_every_task(reason: str) -> None:
    """Every service task is STOPPED at once (its process is gone); the scheduler starts replacements on
    its next pass."""
    with _lock:
        for backend in _all_backends():
            for cluster_tasks in backend.tasks.values():
                for task in cluster_tasks.values():
                    if isinstance(task, LocalTask) and task.last_status != "STOPPED":
                        stop(task, reason)
                        task.last_status = "STOPPED"
                        task.stopped_at = task.stopping_at or datetime.now(UTC)
                        for container in task.containers:
                            container.last_status = "STOPPED"


def report(
    task_id: str, last_status: str, health_status: str | None, reason: str | None, exit_code: int | None
) -> LocalTask:
    """The realizer's word on a task: its process runs, its health, or it has ended."""
    with _lock:
        task = find_task(task_id)
        if task is None:
            raise KeyError(task_id)
        now = datetime.now(UTC)
        if last_status == "RUNNING" and task.last_status == "PROVISIONING":
            task.last_status = "RUNNING"
            task.started_at = now
        elif last_status == "STOPPED":
            if task.desired_status == "RUNNING":  # it ended on its own: the scheduler replaces it
                _count_failure(task)
                task.desired_status = "STOPPED"
                task.stop_code = "EssentialContainerExited"
                task.stopped_reason = reason or "Essential container in task exited"
            task.last_status = "STOPPED"
            task.stopped_at = now
            for container in task.containers:
                container.last_status = "STOPPED"
                container.exitCode = exit_code if exit_code is not None else 0
        if health_status:
            if health_status == "HEALTHY" and task.health_status != "HEALTHY":
                _count_failure(task, healthy=True)
            task.health_status = health_status
            for container in task.containers:
                container.health_status = health_status
        reconcile(task._backend)
        return task


def report_target_event(
    task_id: str, event: str, target_group_arn: str, port: int, reason: str | None = None
) -> LocalTask:
    """The realizer's word on a task's target (registered, deregistered, unhealthy): its service's events."""
    with _lock:
        task = find_task(task_id)
        if task is None:
            raise KeyError(task_id)
        service = task._backend.services.get(f"{task.cluster_name}:{task.service_name}")
        if service is None:
            raise KeyError(task_id)
        service_events.target_event(service, event, task.id, target_group_arn, port, reason)
        return task


def _all_backends() -> list[EC2ContainerServiceBackend]:
    found: list[EC2ContainerServiceBackend] = []
    for account in ecs_backends.values():
        found.extend(account.values())
    return found


def reconciling_after(original: Callable[..., Any]) -> Callable[..., Any]:
    """A moto ECS call that changes services (create, update, delete), then the scheduler's reconcile."""

    def wrapped(self: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        reconcile(self)
        return result

    return wrapped


def reconciling_before(original: Callable[..., Any]) -> Callable[..., Any]:
    """The scheduler's reconcile, then a moto ECS call that reads services or tasks."""

    def wrapped(self: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
        reconcile(self)
        return original(self, *args, **kwargs)

    return wrapped


def stopping_local_tasks(original: Callable[..., Task]) -> Callable[..., Task]:
    """StopTask: a task of a local service is stopped (and replaced) by the scheduler; others are moto's."""

    def stop_task(self: EC2ContainerServiceBackend, cluster_str: str, task_str: str, reason: str) -> Task:
        with _lock:
            task = find_task(task_str.split("/")[-1])
            if task is None:
                return original(self, cluster_str, task_str, reason)
            stop(task, reason or "Task stopped by user", code="UserInitiated")
            reconcile(self)
            return task

    return stop_task


def listing_as_ecs(original: Callable[..., list[Task]]) -> Callable[..., list[Task]]:
    """ListTasks after a reconcile, as ECS answers it: RUNNING tasks unless asked for STOPPED ones
    (desiredStatus defaults to RUNNING), filtered by service (moto ignores serviceName)."""

    def list_tasks(
        self: EC2ContainerServiceBackend,
        cluster_str: str | None = None,
        container_instance: str | None = None,
        family: str | None = None,
        started_by: str | None = None,
        service_name: str | None = None,
        desiredStatus: str | None = None,
    ) -> list[Task]:
        reconcile(self)
        tasks: list[Task] = original(
            self,
            cluster_str,
            container_instance,
            family,
            started_by,
            service_name,
            desiredStatus or "RUNNING",
        )
        if service_name:
            name = service_name.split("/")[-1]
            tasks = [t for t in tasks if isinstance(t, LocalTask) and t.service_name == name]
        return tasks

    return list_tasks
