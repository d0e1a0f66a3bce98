"""The realizer: makes local reality match what the emulator says is deployed.

A reconcile loop reading the emulator through the AWS API, like any client:
- ECS tasks (kept by the emulator's scheduler) -> supervised local processes (native runtime) or
  containers of the task definition's image (docker runtime), with their task definition's environment
  and secrets; each one's real status reported back;
- an ALB in front of a service -> targets registered in the ALB mirror as tasks come and go, drained
  (no new requests, in-flight ones finish, up to the deregistration delay) before a task is stopped;
- faults asked of the emulator (RDS reboot/failover, ElastiCache reboot/failover) -> the same outage
  on the local Postgres or Redis, held for `fault_hold_s` so it can be observed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from devenv.errors import DevenvError, ServiceFailedError
from devenv.realize import control_client
from devenv.realize.alb import AlbMirror
from devenv.realize.tasks import (
    LocalContainer,
    UnrealizableTask,
    discovery_names,
    local_containers,
    native_argv,
    native_environment,
    native_workdir,
    task_container,
)
from devenv.runtime import logfiles, probes
from devenv.runtime.ports import free_port
from devenv.runtime.supervisor import RestartPolicy, ServiceSpec, Supervisor
from devenv.services import faultproxy

log = logging.getLogger("devenv.realizer")
# A pass every 0.25 s while anything moves (a task starting, stopping, changing health, a fault), backing
# off to one a second once passes find nothing new: an idle stack's ~7 ECS calls a pass cost the emulator
# and this process a third of a core at 4 passes a second (and an idle pass reads them only when the
# emulator's ECS digest moved). A change made through the API waits at most IDLE_INTERVAL_S to be seen (ECS
# itself takes seconds to act on one).
LOOP_INTERVAL_S = 0.25
# ECS is read again once its digest changes (devenv.emulator.scheduler.digest), and at least this often
FULL_READ_S = 10.0
IDLE_INTERVAL_S = 1.0
FAULT_TARGETS = {
    "rds-reboot": "postgres",
    "rds-failover": "postgres",
    "elasticache-reboot": "redis",
    "elasticache-failover": "redis",
}


@dataclass(frozen=True)
class LocalData:
    """Where the local Postgres and Redis listen, and where their AWS endpoints must listen."""

    postgres_port: int
    redis_port: int
    redis_tls_port: int | None
    aurora_port: int
    elasticache_port: int


@dataclass
class LocalTask:
    """A running ECS task's local process, and what was last reported about it."""

    task_arn: str
    service: str
    cluster: str
    process: str
    container: LocalContainer
    host_ports: dict[int, int]  # container port -> host port
    target_group_arn: str | None
    cpu_units: float = 1024.0
    memory_mib: float | None = None  # the task definition's memory (CloudWatch's MemoryUtilization is of it)
    reported_status: str = "PROVISIONING"  # RUNNING once its start was reported and its target registered
    reported_health: str = "UNKNOWN"
    stopping: bool = False

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]

    @property
    def host_port(self) -> int | None:
        """The first container port's host port: LISTEN_ADDR, the ALB's target."""
        port = self.container.container_port
        return self.host_ports[port] if port is not None else None


def local_client(service: str, endpoint: str, region: str, config: Config | None = None) -> Any:
    """A client of the local cloud from boto3's default session, where every local client of the process
    comes from (devenv.targets.local.client too): each service's SDK model is read once per process, and
    `up` reads them while the emulator loads (devenv.targets.local_stack.load_sdk_models)."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=config,
    )


class Realizer:
    """One reconcile loop; call `run` in a thread and set the event to stop it."""

    def __init__(
        self,
        supervisor: Supervisor,
        endpoint: str,
        region: str,
        alb: AlbMirror | None,
        data: LocalData | None = None,
        extra_env: dict[str, str] | None = None,
        fault_hold_s: float = 5.0,
        runtime: str = "native",
        llmproxy_source: Path | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.runtime = runtime
        # the llmproxy package the native tasks run: they start in its parent folder, as the image's
        # WORKDIR /app holds /app/llmproxy, so `python -m llmproxy` imports exactly this copy
        self.llmproxy_source = llmproxy_source
        self.data = data
        self.endpoint = endpoint
        self.alb = alb
        self.extra_env = extra_env or {}
        self.fault_hold_s = fault_hold_s
        self.ecs = local_client("ecs", endpoint, region)
        self.secretsmanager = local_client("secretsmanager", endpoint, region)
        self.ssm = local_client("ssm", endpoint, region)
        self.rds = local_client("rds", endpoint, region)
        self.elasticache = local_client("elasticache", endpoint, region)
        self.elbv2 = local_client("elbv2", endpoint, region)
        self.servicediscovery = local_client("servicediscovery", endpoint, region)
        self.tasks: dict[str, LocalTask] = {}
        # a native task's AWS API calls (its task role's) go to the emulator, never to the caller's account
        self.aws_env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }
        # Cloud Map: registry ARN -> its DNS name; DNS name -> the ECS service registered under it
        self._registry_names: dict[str, str] = {}
        self.discovered: dict[str, str] = {}
        self._told: dict[str, str] = {}  # service -> why its tasks cannot start, as last logged
        self.problems: dict[str, str] = {}
        self._starting: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="realizer")
        self._event_seq = self._latest_event_seq()
        self._published: dict[str, Any] = {}
        self._last_picture: Any = None
        self._wanted: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._wanted_digest: str | None = None
        self._wanted_read_at = -FULL_READ_S

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        interval = LOOP_INTERVAL_S
        while not stop.wait(interval):
            try:
                moved = self.reconcile_once()
            except Exception as exc:  # keep reconciling: the emulator may be restarting
                log.warning("reconcile failed: %s", exc)
                moved = True
            interval = LOOP_INTERVAL_S if moved else min(IDLE_INTERVAL_S, interval * 2)

    def reconcile_once(self) -> bool:
        """One pass; whether anything moved since the last (what ECS wants, the local tasks, a fault)."""
        seen = self._event_seq
        self._carry_out_faults()
        self._start_endpoints()
        if self.alb is not None:
            self.alb.tick()
        # what the emulator was told before it was asked: its answer cannot predate those reports
        told_running = {arn for arn, local in list(self.tasks.items()) if local.reported_status == "RUNNING"}
        wanted = self._wanted_tasks_when_changed()
        self._publish(wanted)
        self._discover({service["serviceArn"]: service for _, service in wanted.values()}.values())
        for arn, (task, service) in wanted.items():
            with self._lock:
                known = arn in self.tasks or arn in self._starting
                if not known:
                    self._starting.add(arn)
            if not known:
                self._submit(self._start_task, task, service)
        for arn, local in list(self.tasks.items()):
            if local.stopping:
                continue
            if arn not in wanted:
                local.stopping = True
                self._submit(self._drain_and_stop, local, "stopped by the scheduler")
            else:
                self._watch(local, wanted[arn][0], arn in told_running)
        picture = (
            {
                arn: (t["lastStatus"], t.get("healthStatus"), s["desiredCount"])
                for arn, (t, s) in wanted.items()
            },
            {arn: (t.reported_status, t.reported_health, t.stopping) for arn, t in list(self.tasks.items())},
            self._published,
        )
        moved = picture != self._last_picture or bool(self._starting) or self._event_seq != seen
        self._last_picture = picture
        return moved

    def _submit(self, job: Callable[..., Any], *args: Any) -> None:
        """Run a job on the pool; what it raises is logged (a dropped future would hide it)."""

        def log_failure(future: Future[Any]) -> None:
            if not future.cancelled() and future.exception() is not None:
                log.warning("%s failed: %s", job.__name__, future.exception(), exc_info=future.exception())

        self._pool.submit(job, *args).add_done_callback(log_failure)

    def shutdown(self) -> None:
        """Stop every task process, side by side (the supervisor stops the rest)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

        def remove(local: LocalTask) -> None:
            with contextlib.suppress(Exception):
                self.supervisor.remove(local.process)

        tasks = list(self.tasks.values())
        with ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
            list(pool.map(remove, tasks))

    # -- reading the emulator -------------------------------------------------------------

    def _wanted_tasks_when_changed(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """`_wanted_tasks`, read again only when the emulator's ECS digest moved (or FULL_READ_S passed,
        or the emulator gives no digest): the digest is taken first, so a change during the read shows
        as a new digest on the next pass."""
        digest = control_client.ecs_digest(self.endpoint)
        now = time.monotonic()
        if digest is None or digest != self._wanted_digest or now - self._wanted_read_at >= FULL_READ_S:
            self._wanted = self._wanted_tasks()
            self._wanted_digest, self._wanted_read_at = digest, now
        return self._wanted

    def _wanted_tasks(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """Every task the emulator wants running, with its service."""
        wanted: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for cluster in self.ecs.list_clusters()["clusterArns"]:
            service_arns = self.ecs.list_services(cluster=cluster)["serviceArns"]
            for chunk in _chunks(service_arns, 10):
                for service in self.ecs.describe_services(cluster=cluster, services=chunk)["services"]:
                    arns = self.ecs.list_tasks(
                        cluster=cluster, serviceName=service["serviceName"], desiredStatus="RUNNING"
                    )["taskArns"]
                    for task_chunk in _chunks(arns, 100):
                        for task in self.ecs.describe_tasks(cluster=cluster, tasks=task_chunk)["tasks"]:
                            if task["desiredStatus"] == "RUNNING":
                                wanted[task["taskArn"]] = (task, service)
        return wanted

    def _publish(self, wanted: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """ECS services (running/desired) and target health into the state file, for `devenv status`."""
        services: dict[str, dict[str, Any]] = {}
        for task, service in wanted.values():
            entry = services.setdefault(
                service["serviceName"],
                {
                    "name": service["serviceName"],
                    "desired": service["desiredCount"],
                    "running": service["runningCount"],
                    "tasks": [],
                },
            )
            target, target_health = self._alb_target(task["taskArn"])
            entry["tasks"].append(
                {
                    "id": task["taskArn"].rsplit("/", 1)[-1],
                    "lastStatus": task["lastStatus"],
                    "health": task.get("healthStatus", "UNKNOWN"),
                    "target": target,
                    "target_health": target_health,
                }
            )
        targets = []
        if self.alb is not None:
            for mirror in self.alb.mirrors.values():
                targets += [
                    {"target": dial, "state": h.state, "detail": h.detail}
                    for dial, h in mirror.health.items()
                ]
        published = {"ecs_services": sorted(services.values(), key=lambda s: s["name"]), "targets": targets}
        if published != self._published:
            self._published = published
            self.supervisor.facts.update(published)
            self.supervisor.set_phase(self.supervisor.phase, self.supervisor.phase_detail)

    def _alb_target(self, task_arn: str) -> tuple[str | None, str | None]:
        """A task's ALB target and its state as the ALB's health checks see it (initial, healthy,
        unhealthy); (None, None) for a task behind no ALB."""
        local = self.tasks.get(task_arn)
        if local is None or self.alb is None or not local.target_group_arn or not local.host_port:
            return None, None
        return f"127.0.0.1:{local.host_port}", self.alb.target_state(local.target_group_arn, local.host_port)

    def _discover(self, services: Iterable[dict[str, Any]]) -> None:
        """Each Cloud Map name an ECS service registers its tasks under (`master.loadgen.local`)."""
        discovered = {}
        for service in services:
            for registry in service.get("serviceRegistries") or []:
                arn = registry["registryArn"]
                if arn not in self._registry_names:
                    found = self.servicediscovery.get_service(Id=arn.rsplit("/", 1)[-1])["Service"]
                    namespace = self.servicediscovery.get_namespace(Id=found["NamespaceId"])["Namespace"]
                    self._registry_names[arn] = f"{found['Name']}.{namespace['Name']}"
                discovered[self._registry_names[arn]] = service["serviceName"]
        self.discovered = discovered

    def _discovered_ports(self, name: str) -> dict[int, int] | None:
        """The host ports of a running task registered under a Cloud Map name; None while it has none."""
        service = self.discovered.get(name)
        for local in list(self.tasks.values()):
            if local.service == service and not local.stopping and local.host_ports:
                return local.host_ports
        return None

    # -- Aurora and ElastiCache endpoints --------------------------------------------------

    def _start_endpoints(self) -> None:
        """The data endpoints and the ALB mirror, started side by side (neither needs the other; the tasks
        wait for both). Once they run, neither asks the emulator anything."""
        if self.alb is None or self.alb.started:
            self._realize_data_endpoints()
            return
        alb = self._pool.submit(self.alb.ensure)
        try:
            self._realize_data_endpoints()
        finally:
            futures.wait([alb])
        alb.result()

    def _realize_data_endpoints(self) -> None:
        """A fault proxy at each endpoint the emulator advertises, once the cluster / group exists (both
        started together)."""
        if self.data is None:
            return
        endpoints = []
        if "aurora" not in self.supervisor.services and self.rds.describe_db_clusters()["DBClusters"]:
            endpoints.append(
                endpoint_proxy("aurora", "postgresql", self.data.aurora_port, self.data.postgres_port)
            )
        if "elasticache" not in self.supervisor.services:
            groups = self.elasticache.describe_replication_groups()["ReplicationGroups"]
            if groups:
                encrypted = any(g.get("TransitEncryptionEnabled") for g in groups)
                if encrypted and self.data.redis_tls_port is None:
                    raise UnrealizableTask("the cache encrypts in transit but the local Redis serves no TLS")
                upstream = self.data.redis_tls_port if encrypted else self.data.redis_port
                scheme = "rediss" if encrypted else "redis"
                endpoints.append(
                    endpoint_proxy("elasticache", scheme, self.data.elasticache_port, upstream or 0)
                )
        if endpoints:
            self.supervisor.add(*endpoints)

    # -- tasks ----------------------------------------------------------------------------

    def _start_task(self, task: dict[str, Any], service: dict[str, Any]) -> None:
        arn = task["taskArn"]
        try:
            definition = self.ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])[
                "taskDefinition"
            ]
            containers = local_containers(definition, self.secretsmanager, self.ssm)
            essential = [c for c in containers if c.essential]
            if len(essential) != 1:
                raise UnrealizableTask(
                    f"task definition {definition['family']} has {len(essential)} essential containers; one is supported"
                )
            container = essential[0]
            balancer = next(
                (lb for lb in service.get("loadBalancers", []) if lb.get("containerName") == container.name),
                None,
            )
            hosts = {}
            for name in discovery_names(container.command, self.discovered):
                ports = self._discovered_ports(name)
                if ports is None:  # its task is not running yet: try again on the next pass
                    waiting = f"waits for {name} (no running task registered under it yet)"
                    if self._told.get(service["serviceName"]) != waiting:  # once, not at every pass
                        self._told[service["serviceName"]] = waiting
                        log.info("service %s: its tasks %s", service["serviceName"], waiting)
                    with self._lock:
                        self._starting.discard(arn)
                    return
                hosts[name] = ports
            local = LocalTask(
                task_arn=arn,
                service=service["serviceName"],
                cluster=task["clusterArn"],
                # `<service>-<task id>`: `devenv logs <service>` finds every task's log by name
                process=f"{service['serviceName']}-{arn.rsplit('/', 1)[-1][:8]}",
                container=container,
                host_ports={port: free_port() for port in container.container_ports},
                target_group_arn=balancer["targetGroupArn"] if balancer and self.alb else None,
                cpu_units=float(definition.get("cpu") or 1024),
                memory_mib=float(definition["memory"]) if definition.get("memory") else None,
            )
            self.supervisor.add(self._spec(local, hosts))
        except (DevenvError, ServiceFailedError) as exc:
            self.problems[arn] = exc.message
            if self._told.get(service["serviceName"]) != exc.message:  # once, not at every replacement
                self._told[service["serviceName"]] = exc.message
                log.warning(
                    "service %s: its tasks cannot start here: %s", service["serviceName"], exc.message
                )
            self._report(
                arn,
                "STOPPED",
                reason=f"CannotStartContainerError: {exc.message.splitlines()[0]}",
                exit_code=1,
            )
            with self._lock:
                self._starting.discard(arn)
            return
        except Exception as exc:
            self.problems[arn] = str(exc)
            with self._lock:
                self._starting.discard(arn)
            raise
        with self._lock:
            self.tasks[arn] = local
            self._starting.discard(arn)
        self._report(arn, "RUNNING")
        if local.target_group_arn and local.host_port and self.alb:
            self.alb.register(local.target_group_arn, local.host_port)
            self._report_target(local, "registered")
        local.reported_status = "RUNNING"

    def _spec(self, local: LocalTask, hosts: dict[str, dict[int, int]]) -> ServiceSpec:
        env = {**self.extra_env, **local.container.env, "DISPATCHER_CONSUMER_NAME": local.process}
        ready: probes.Probe
        if local.host_port:
            env["LISTEN_ADDR"] = f"127.0.0.1:{local.host_port}"
            ready = probes.tcp("127.0.0.1", local.host_port)
        else:
            ready = _alive_for(0.3)
        stop_timeout_s = local.container.stop_timeout_s
        if self.runtime == "docker":
            from devenv.runtime import docker

            config = task_container(
                self.supervisor.state_dir,
                local.process,
                local.container.image,
                local.container.command,
                env,
                stop_timeout_s,
                local.container.health_check,
            )
            argv = docker.process_argv(self.supervisor.state_dir, config)
            env = {}
            stop_timeout_s += docker.STOP_MARGIN_S  # the container's own grace, then the process's
            cwd = None
        else:
            cwd = native_workdir(local.container, self.llmproxy_source)
            argv = native_argv(local.container, cwd, local.host_ports, hosts)
            env = {**self.aws_env, **env, **native_environment(local.container)}
        return ServiceSpec(
            name=local.process,
            argv=argv,
            env={**os.environ, **env},
            cwd=cwd,
            ready=ready,
            ports={"http": local.host_port} if local.host_port else {},
            url=f"http://127.0.0.1:{local.host_port}" if local.host_port else None,
            stop_timeout_s=stop_timeout_s,
            ready_timeout_s=60,
            restart=RestartPolicy(mode="never"),  # ECS replaces a task; it does not restart it
            extra={
                "ecs_service": local.service,
                "task_arn": local.task_arn,
                "host_ports": {str(port): host for port, host in local.host_ports.items()},
            },
        )

    def _watch(self, local: LocalTask, task: dict[str, Any], told_running: bool) -> None:
        """A process that ended on its own is reported STOPPED (the scheduler replaces it); health is
        reported. So is what the emulator no longer knows (`task`, as it describes the task): restarted
        from a saved local cloud older than the task's start, it still has PROVISIONING a task it was
        told RUNNING (`told_running`: before it described it; a task whose start is being reported while
        the pass runs is not forgotten, only not yet seen)."""
        running = self.supervisor.services.get(local.process)
        if running is None:
            return
        if running.proc is not None and running.proc.poll() is not None and running.state != "starting":
            local.stopping = True
            code = running.proc.returncode
            self._submit(
                self._task_ended, local, 128 - code if code < 0 else code
            )  # as a container reports it
            return
        forgotten = told_running and task.get("lastStatus") == "PROVISIONING" and running.state == "running"
        if local.target_group_arn and local.host_port and self.alb:
            if forgotten:
                self.alb.register_again(local.target_group_arn, local.host_port)
            health = self.alb.health(local.target_group_arn, local.host_port)
            if health != local.reported_health or forgotten or task.get("healthStatus") != health:
                newly_unhealthy = health == "UNHEALTHY" and local.reported_health != "UNHEALTHY"
                local.reported_health = health
                self._report(local.task_arn, "RUNNING", health=health)
                if newly_unhealthy:
                    reason = self.alb.unhealthy_reason(local.target_group_arn, local.host_port)
                    self._report_target(local, "unhealthy", reason)
        elif forgotten:
            self._report(local.task_arn, "RUNNING")

    def _task_ended(self, local: LocalTask, exit_code: int | None) -> None:
        self._drain(local)
        self.supervisor.remove(local.process)
        self._forget(local)
        self._report(
            local.task_arn, "STOPPED", reason="Essential container in task exited", exit_code=exit_code
        )

    def _drain_and_stop(self, local: LocalTask, reason: str) -> None:
        """Deregister from the ALB (no new requests), let in-flight ones finish, then SIGTERM."""
        self._drain(local)
        running = self.supervisor.services.get(local.process)
        exit_code = None
        if running is not None:
            self.supervisor.remove(local.process)
            exit_code = running.exit_code
        self._forget(local)
        self._report(local.task_arn, "STOPPED", reason=reason, exit_code=exit_code)

    def _drain(self, local: LocalTask) -> None:
        """Take a task's target out of its group (logged as ECS logs it), waiting for in-flight requests."""
        if local.target_group_arn and local.host_port and self.alb:
            self._report_target(local, "deregistered")
            self.alb.drain(local.target_group_arn, local.host_port)

    def _forget(self, local: LocalTask) -> None:
        with self._lock:
            self.tasks.pop(local.task_arn, None)
            running = {task.process for task in self.tasks.values()}
        logfiles.prune_stopped_tasks(self.supervisor.state_dir.logs, running)

    def _report(
        self,
        arn: str,
        status: str,
        health: str | None = None,
        reason: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        body = {"lastStatus": status, "healthStatus": health, "stoppedReason": reason, "exitCode": exit_code}
        try:
            control_client.report_task(self.endpoint, arn, body)
        except OSError as exc:
            log.warning("could not report task %s %s: %s", arn, status, exc)

    def _report_target(self, local: LocalTask, event: str, reason: str | None = None) -> None:
        """An ALB-side event of a task, for its service's events (ECS registers targets on AWS)."""
        if local.target_group_arn is None or local.host_port is None:
            return
        try:
            control_client.report_target_event(
                self.endpoint, local.task_arn, event, local.target_group_arn, local.host_port, reason
            )
        except OSError as exc:
            log.warning("could not report %s for task %s: %s", event, local.task_arn, exc)

    # -- faults ---------------------------------------------------------------------------

    def _latest_event_seq(self) -> int:
        events = control_client.events_after(self.endpoint, 0)
        return int(events[-1]["seq"]) if events else 0

    def _carry_out_faults(self) -> None:
        for event in control_client.events_after(self.endpoint, self._event_seq):
            self._event_seq = int(event["seq"])
            service = FAULT_TARGETS.get(event["kind"])
            if service and service in self.supervisor.services:
                hold = self.fault_hold_s if event["kind"].endswith("reboot") or service == "postgres" else 1.0
                log.info(
                    "fault %s on %s: %s down for %.1f s", event["kind"], event["resource"], service, hold
                )
                self._submit(self.supervisor.restart, service, hold)


def endpoint_proxy(name: str, scheme: str, port: int, upstream_port: int) -> ServiceSpec:
    """A fault proxy standing at an AWS endpoint in front of a local server (failover experiments steer it
    through its control API, `control_url`); its url is the endpoint, as clients reach it."""
    control = free_port()
    return ServiceSpec(
        name=name,
        argv=faultproxy.command(f"127.0.0.1:{port}", f"127.0.0.1:{upstream_port}", f"127.0.0.1:{control}"),
        ready=faultproxy.ready_probe(f"http://127.0.0.1:{control}"),
        ports={"endpoint": port, "control": control},
        url=f"{scheme}://127.0.0.1:{port}",
        restart=RestartPolicy(mode="always"),
        extra={"control_url": f"http://127.0.0.1:{control}"},
    )


def _alive_for(seconds: float) -> probes.Probe:
    """Ready once the probe has been asked for `seconds` (a process with no port to check)."""
    began: list[float] = []

    def check() -> probes.ProbeResult:
        now = time.monotonic()
        if not began:
            began.append(now)
        return probes.ProbeResult(now - began[0] >= seconds, f"up for {now - began[0]:.1f} s")

    return check


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
