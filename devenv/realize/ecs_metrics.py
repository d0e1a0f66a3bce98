"""AWS/ECS service metrics from the realized task processes: CPUUtilization and MemoryUtilization
{ClusterName, ServiceName}, as Fargate reports them.

A task's CPU is the cores its process tree kept busy since the previous sample, as a percent of the task
definition's CPU units (1024 units = one core; above 100 % when a task uses more than its share, which
Fargate would throttle); its memory is the tree's resident memory as a percent of the task definition's
memory. Each sample publishes one statistic set per service over its running tasks, so a minute's
Average is the service's average task, and Minimum and Maximum its least and most busy task, as on AWS.
A task is measured from its second sample on (CPU needs two readings).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import psutil

from devenv.realize.metrics import Datum, StatisticSet
from devenv.realize.process_usage import ProcessTreeMeter, service_pid
from devenv.realize.realizer import Realizer

NAMESPACE = "AWS/ECS"
MIB = 2**20


@dataclass(frozen=True)
class TaskUsage:
    """One task's share of its task definition's CPU and memory over one sample, in percent."""

    cluster: str  # the cluster's name (not its ARN)
    service: str
    cpu_percent: float | None
    memory_percent: float | None


def cluster_name(arn_or_name: str) -> str:
    """ClusterName dimension: `arn:aws:ecs:REGION:ACCOUNT:cluster/NAME` -> NAME (a name stays a name)."""
    return arn_or_name.rsplit(":cluster/", 1)[-1]


def ecs_datums(usages: list[TaskUsage]) -> list[Datum]:
    """One CPUUtilization and one MemoryUtilization statistic set per service with measured tasks."""
    cpu: dict[tuple[str, str], list[float]] = defaultdict(list)
    memory: dict[tuple[str, str], list[float]] = defaultdict(list)
    for usage in usages:
        key = (usage.cluster, usage.service)
        if usage.cpu_percent is not None:
            cpu[key].append(usage.cpu_percent)
        if usage.memory_percent is not None:
            memory[key].append(usage.memory_percent)
    datums = []
    for name, by_service in (("CPUUtilization", cpu), ("MemoryUtilization", memory)):
        for (cluster, service), values in sorted(by_service.items()):
            stats = StatisticSet.of(values)
            if stats is not None:
                dimensions = (("ClusterName", cluster), ("ServiceName", service))
                datums.append(Datum(NAMESPACE, name, dimensions, "Percent", stats))
    return datums


class EcsSource:
    """Samples the realizer's running tasks."""

    def __init__(self, realizer: Realizer) -> None:
        self.realizer = realizer
        self._meters: dict[str, ProcessTreeMeter] = {}  # by task ARN

    def __call__(self) -> list[Datum]:
        usages = []
        for task in list(self.realizer.tasks.values()):
            if task.stopping:
                continue
            pid = service_pid(self.realizer.supervisor, task.process)
            if pid is None:
                continue
            meter = self._meters.get(task.task_arn)
            try:
                if meter is None or meter.pid != pid:
                    meter = self._meters[task.task_arn] = ProcessTreeMeter(pid)
                reading = meter.read()
            except psutil.Error:
                continue  # the task just ended
            cpu = None if reading.cpu_cores is None else reading.cpu_cores * 1024 / task.cpu_units * 100
            memory = reading.rss_bytes / (task.memory_mib * MIB) * 100 if task.memory_mib else None
            usages.append(TaskUsage(cluster_name(task.cluster), task.service, cpu, memory))
        for gone in set(self._meters) - set(self.realizer.tasks):
            del self._meters[gone]
        return ecs_datums(usages)
