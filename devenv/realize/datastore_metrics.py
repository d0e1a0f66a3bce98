"""AWS/RDS metrics from the local Postgres and AWS/ElastiCache metrics from the local Redis.

AWS/RDS {DBClusterIdentifier}, for each Aurora cluster the emulator has (locally all share one Postgres):
- DatabaseConnections: Postgres's client backends (one per client connection; its own background
  processes, autovacuum and parallel workers are not clients, as on Aurora), counted from their process
  titles (`postgres: USER DATABASE HOST(PORT) ...`), so measuring opens no connection of its own;
- CPUUtilization: the Postgres processes' CPU as a percent of this machine's cores;
- ServerlessDatabaseCapacity (an approximation; Aurora does not publish how it scales): the ACUs the
  Postgres CPU would take at one ACU per quarter of a core (2 GiB per ACU against a memory-optimized
  instance's 8 GiB per vCPU), rounded up to the half ACU Aurora scales by, within the cluster's
  ServerlessV2ScalingConfiguration MinCapacity..MaxCapacity.

AWS/ElastiCache, for each member cluster of each replication group (all served by the one local Redis),
with {CacheClusterId} and with {CacheClusterId, CacheNodeId=0001}, from Redis INFO:
- CurrConnections: connected_clients, not counting the connection that reads INFO;
- Evictions: evicted_keys gained since the previous sample (the count restarts with Redis);
- DatabaseMemoryUsagePercentage: used_memory of maxmemory; with no maxmemory set locally, of what
  ElastiCache gives the node type: its memory less the default 25 % reserved memory;
- EngineCPUUtilization: the Redis main thread's CPU (used_cpu_*_main_thread) as a percent of one core.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import psutil
import redis

from devenv.realize.metrics import Datum
from devenv.realize.process_usage import ProcessTreeMeter, service_pid
from devenv.runtime.supervisor import Supervisor

log = logging.getLogger("devenv.metrics")

RDS = "AWS/RDS"
ELASTICACHE = "AWS/ElastiCache"
DISCOVERY_S = 10.0  # how long the clusters read from the emulator are trusted
ACU_PER_CORE = 4.0
ACU_STEP = 0.5
RESERVED_MEMORY = 0.25  # ElastiCache's default reserved-memory-percent
NODE_ID = "0001"  # a replication group's member cluster has one node
GIB = 2**30
# Memory of ElastiCache node types (GiB, AWS's node type table); others have no memory percentage.
NODE_MEMORY_GIB = {
    "cache.t2.micro": 0.555,
    "cache.t2.small": 1.55,
    "cache.t2.medium": 3.22,
    "cache.t3.micro": 0.5,
    "cache.t3.small": 1.37,
    "cache.t3.medium": 3.09,
    "cache.t4g.micro": 0.5,
    "cache.t4g.small": 1.37,
    "cache.t4g.medium": 3.09,
    "cache.m5.large": 6.38,
    "cache.m5.xlarge": 12.93,
    "cache.m6g.large": 6.38,
    "cache.m6g.xlarge": 12.93,
    "cache.m7g.large": 6.38,
    "cache.m7g.xlarge": 12.93,
    "cache.r5.large": 13.07,
    "cache.r5.xlarge": 26.32,
    "cache.r6g.large": 13.07,
    "cache.r6g.xlarge": 26.32,
    "cache.r7g.large": 13.07,
    "cache.r7g.xlarge": 26.32,
}
CLIENT_BACKEND = re.compile(r"^postgres: \S+ \S+ (\[local\]|\S+\(\d+\))(\s|$)")

T = TypeVar("T")


class Refreshed(Generic[T]):
    """A value read again at most every `ttl_s` (what the emulator has changes rarely; asking it every
    sample would load it for nothing)."""

    def __init__(self, read: Callable[[], T], ttl_s: float = DISCOVERY_S) -> None:
        self._read = read
        self._ttl_s = ttl_s
        self._value: T | None = None
        self._at = -math.inf

    def get(self) -> T:
        if self._value is None or time.monotonic() - self._at >= self._ttl_s:
            self._value = self._read()
            self._at = time.monotonic()
        return self._value


# -- RDS ----------------------------------------------------------------------------------------------


def client_backends(titles: list[str]) -> int:
    """How many of these Postgres process titles are client connections."""
    return sum(1 for title in titles if CLIENT_BACKEND.match(title))


def serverless_capacity(cpu_cores: float, min_acu: float, max_acu: float) -> float:
    """The ACUs Aurora Serverless v2 would run at for `cpu_cores` busy (see the module's docstring)."""
    wanted = math.ceil(round(cpu_cores * ACU_PER_CORE / ACU_STEP, 6)) * ACU_STEP
    return min(max_acu, max(min_acu, wanted))


def rds_datums(clusters: list[dict[str, Any]], connections: int, cpu_cores: float | None) -> list[Datum]:
    """One sample of every cluster (describe_db_clusters entries) on the local Postgres."""
    datums = []
    for cluster in clusters:
        dimensions = (("DBClusterIdentifier", cluster["DBClusterIdentifier"]),)
        datums.append(Datum(RDS, "DatabaseConnections", dimensions, "Count", connections))
        if cpu_cores is None:
            continue
        cores = psutil.cpu_count() or 1
        datums.append(Datum(RDS, "CPUUtilization", dimensions, "Percent", cpu_cores / cores * 100))
        scaling = cluster.get("ServerlessV2ScalingConfiguration")
        if scaling:
            acu = serverless_capacity(cpu_cores, float(scaling["MinCapacity"]), float(scaling["MaxCapacity"]))
            datums.append(Datum(RDS, "ServerlessDatabaseCapacity", dimensions, "Count", acu))
    return datums


class RdsSource:
    """Samples the local Postgres for the emulator's Aurora clusters."""

    def __init__(self, rds: Any, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self._clusters = Refreshed(lambda: list(rds.describe_db_clusters()["DBClusters"]))
        self._meter: ProcessTreeMeter | None = None

    def __call__(self) -> list[Datum]:
        clusters = self._clusters.get()
        pid = service_pid(self.supervisor, "postgres")
        if not clusters or pid is None:
            return []
        if self._meter is None or self._meter.pid != pid:  # Postgres restarted (a reboot or failover)
            self._meter = ProcessTreeMeter(pid)
        reading = self._meter.read()
        titles = []
        for process in reading.processes[1:]:
            try:
                titles.append(" ".join(process.cmdline()).strip())
            except psutil.Error:
                continue  # the connection closed meanwhile
        return rds_datums(clusters, client_backends(titles), reading.cpu_cores)


# -- ElastiCache ----------------------------------------------------------------------------------------


def memory_limit_bytes(info: dict[str, Any], node_type: str) -> float | None:
    """The memory DatabaseMemoryUsagePercentage is a percent of: Redis's maxmemory, else the node type's
    (None for a node type this module does not know)."""
    if info.get("maxmemory"):
        return float(info["maxmemory"])
    gib = NODE_MEMORY_GIB.get(node_type)
    return gib * GIB * (1 - RESERVED_MEMORY) if gib else None


def cache_datums(
    groups: list[dict[str, Any]],
    info: dict[str, Any],
    previous: dict[str, Any] | None,
    elapsed_s: float,
) -> list[Datum]:
    """One sample of every member cluster of `groups` (describe_replication_groups entries) from Redis
    INFO now and at the previous sample (None for the first)."""
    values: dict[str, float] = {"CurrConnections": max(0, int(info["connected_clients"]) - 1)}
    units = {
        "CurrConnections": "Count",
        "Evictions": "Count",
        "EngineCPUUtilization": "Percent",
        "DatabaseMemoryUsagePercentage": "Percent",
    }
    if previous is not None:
        evicted, before = int(info["evicted_keys"]), int(previous["evicted_keys"])
        values["Evictions"] = evicted - before if evicted >= before else evicted  # Redis restarted
        busy = _main_thread_cpu_s(info) - _main_thread_cpu_s(previous)
        if busy >= 0 and elapsed_s > 0:
            values["EngineCPUUtilization"] = busy / elapsed_s * 100
    datums = []
    for group in groups:
        limit = memory_limit_bytes(info, group.get("CacheNodeType", ""))
        own = dict(values)
        if limit:
            own["DatabaseMemoryUsagePercentage"] = int(info["used_memory"]) / limit * 100
        for member in group.get("MemberClusters", []):
            for dimensions in (
                (("CacheClusterId", member),),
                (("CacheClusterId", member), ("CacheNodeId", NODE_ID)),
            ):
                datums += [Datum(ELASTICACHE, name, dimensions, units[name], v) for name, v in own.items()]
    return datums


def _main_thread_cpu_s(info: dict[str, Any]) -> float:
    return float(info["used_cpu_sys_main_thread"]) + float(info["used_cpu_user_main_thread"])


class CacheSource:
    """Samples the local Redis for the emulator's replication groups."""

    def __init__(self, elasticache: Any, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self._groups = Refreshed(lambda: list(elasticache.describe_replication_groups()["ReplicationGroups"]))
        self._client: redis.Redis | None = None
        self._previous: tuple[float, dict[str, Any]] | None = None  # (monotonic time, INFO)
        self._unknown_types: set[str] = set()

    def __call__(self) -> list[Datum]:
        groups = self._groups.get()
        running = self.supervisor.services.get("redis")
        if not groups or running is None or running.spec.url is None:
            return []
        if self._client is None:
            self._client = redis.Redis.from_url(running.spec.url, socket_timeout=2, socket_connect_timeout=2)
        try:
            info = self._client.info()
            now = time.monotonic()
        except redis.RedisError:
            self._previous = None  # Redis is restarting: counters start again
            raise
        for group in groups:
            node_type = group.get("CacheNodeType", "")
            if memory_limit_bytes(info, node_type) is None and node_type not in self._unknown_types:
                self._unknown_types.add(node_type)
                log.warning(
                    "metrics: no DatabaseMemoryUsagePercentage for node type %r: its memory is not known "
                    "locally (set maxmemory on the local Redis, or add the type to NODE_MEMORY_GIB)",
                    node_type,
                )
        if self._previous is None:
            datums = cache_datums(groups, info, None, 0.0)
        else:
            datums = cache_datums(groups, info, self._previous[1], now - self._previous[0])
        self._previous = (now, info)
        return datums
