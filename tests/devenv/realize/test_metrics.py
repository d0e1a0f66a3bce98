"""The metrics' pure parts (dimensions from ARNs, what each sample publishes) and the publisher against
a real emulator that is down, then up."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from werkzeug.serving import make_server

from devenv.emulator import moto_patches
from devenv.realize.alb_metrics import (
    GroupSample,
    alb_datums,
    load_balancer_dimension,
    target_group_dimension,
)
from devenv.realize.datastore_metrics import (
    cache_datums,
    client_backends,
    memory_limit_bytes,
    rds_datums,
    serverless_capacity,
)
from devenv.realize.ecs_metrics import TaskUsage, cluster_name, ecs_datums
from devenv.realize.metrics import (
    Datum,
    Distribution,
    MetricsCollector,
    Publisher,
    StatisticSet,
    calls,
    sample_interval_s,
)
from devenv.realize.stack_metrics import CLIENT_CONFIG
from devenv.services.access_log import Tally
from tests.ports import free_port
from tests.waiting import wait_for

LB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/my-alb/50dc6c495c0c9188"
TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/my-tg/73e2d6bc24d8a067"
LB = "app/my-alb/50dc6c495c0c9188"
TG = "targetgroup/my-tg/73e2d6bc24d8a067"


def by_key(datums: list[Datum]) -> dict[tuple[str, tuple[tuple[str, str], ...]], Datum]:
    keyed = {(d.name, d.dimensions): d for d in datums}
    assert len(keyed) == len(datums), "a metric published twice in one sample"
    return keyed


@pytest.mark.parametrize(
    ("time_scale", "interval"), [(1, 5.0), (10, 1.5), (15, 1.0), (30, 0.5), (60, 0.5), (3600, 0.5)]
)
def test_the_sample_interval_shrinks_with_time_scale(time_scale: float, interval: float) -> None:
    assert sample_interval_s(time_scale) == interval


def test_dimensions_are_the_arns_resource_parts() -> None:
    assert load_balancer_dimension(LB_ARN) == LB
    assert target_group_dimension(TG_ARN) == TG


@pytest.mark.parametrize(
    "arn",
    [
        TG_ARN,  # a target group is no load balancer
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/my-nlb/50dc6c495c0c9188",
        "arn:aws:ecs:us-east-1:123456789012:loadbalancer/app/my-alb/50dc6c495c0c9188",
        "app/my-alb/50dc6c495c0c9188",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/my-alb",
    ],
)
def test_a_bad_load_balancer_arn_is_named(arn: str) -> None:
    with pytest.raises(ValueError, match=arn.replace("/", ".")):
        load_balancer_dimension(arn)


def tally(requests: int, target: dict[str, int], elb: dict[str, int], times: list[float]) -> Tally:
    return Tally(requests, Counter(target), Counter(elb), times)


def test_an_alb_sample_publishes_aws_metrics_in_aws_dimension_combinations() -> None:
    group = GroupSample(
        TG,
        tally(6, {"2XX": 4, "5XX": 2}, {"5XX": 3}, [0.01, 0.03, 0.02]),
        healthy=2,
        unhealthy=1,
        registered=4,
    )
    published = by_key(alb_datums(LB, [group]))
    lb = (("LoadBalancer", LB),)
    both = (("LoadBalancer", LB), ("TargetGroup", TG))
    assert set(published) == {
        *((name, dims) for dims in (lb, both) for name in ("RequestCount", "TargetResponseTime")),
        *(
            (name, dims)
            for dims in (lb, both)
            for name in ("HTTPCode_Target_2XX_Count", "HTTPCode_Target_5XX_Count")
        ),
        ("HTTPCode_ELB_5XX_Count", lb),  # the load balancer's own: no TargetGroup dimension
        ("RequestCountPerTarget", (("TargetGroup", TG),)),  # what target tracking reads
        ("RequestCountPerTarget", both),
        ("HealthyHostCount", both),
        ("UnHealthyHostCount", both),
    }
    assert published[("RequestCount", lb)].value == 6
    assert published[("HTTPCode_ELB_5XX_Count", lb)].value == 3
    assert published[("HTTPCode_Target_5XX_Count", both)].value == 2
    assert published[("RequestCountPerTarget", both)].value == 3  # 6 requests / 2 healthy targets
    assert published[("TargetResponseTime", lb)].value == Distribution(((0.01, 1), (0.02, 1), (0.03, 1)))
    assert published[("TargetResponseTime", lb)].unit == "Seconds"
    assert (published[("HealthyHostCount", both)].value, published[("UnHealthyHostCount", both)].value) == (
        2,
        1,
    )


def test_requests_per_target_divide_by_every_registered_target_when_none_is_healthy() -> None:
    group = GroupSample(TG, tally(6, {"2XX": 6}, {}, [0.01] * 6), healthy=0, unhealthy=2, registered=3)
    published = by_key(alb_datums(LB, [group]))
    assert published[("RequestCountPerTarget", (("TargetGroup", TG),))].value == 2


def test_a_sample_without_requests_publishes_only_the_host_counts() -> None:
    group = GroupSample(TG, Tally(), healthy=1, unhealthy=0, registered=1)
    assert {d.name for d in alb_datums(LB, [group])} == {"HealthyHostCount", "UnHealthyHostCount"}


def test_target_groups_add_up_at_the_load_balancer() -> None:
    other = "targetgroup/other/0123456789abcdef"
    groups = [
        GroupSample(TG, tally(2, {"2XX": 2}, {}, [0.1, 0.2]), 1, 0, 1),
        GroupSample(other, tally(3, {"2XX": 3}, {"5XX": 1}, [0.3, 0.3, 0.3]), 1, 0, 1),
    ]
    published = by_key(alb_datums(LB, groups))
    lb = (("LoadBalancer", LB),)
    assert published[("RequestCount", lb)].value == 5
    assert published[("HTTPCode_Target_2XX_Count", lb)].value == 5
    assert published[("TargetResponseTime", lb)].value == Distribution(((0.1, 1), (0.2, 1), (0.3, 3)))
    assert published[("RequestCount", (("LoadBalancer", LB), ("TargetGroup", other)))].value == 3


def test_ecs_publishes_one_statistic_set_per_service_over_its_tasks() -> None:
    usages = [
        TaskUsage("llm-proxy", "proxy", 20.0, 10.0),
        TaskUsage("llm-proxy", "proxy", 60.0, 30.0),
        TaskUsage("llm-proxy", "proxy", None, 20.0),  # measured once so far: memory only
        TaskUsage("llm-proxy", "dispatcher", 5.0, None),
    ]
    published = by_key(ecs_datums(usages))
    proxy = (("ClusterName", "llm-proxy"), ("ServiceName", "proxy"))
    dispatcher = (("ClusterName", "llm-proxy"), ("ServiceName", "dispatcher"))
    assert set(published) == {
        ("CPUUtilization", proxy),
        ("MemoryUtilization", proxy),
        ("CPUUtilization", dispatcher),
    }
    assert published[("CPUUtilization", proxy)].value == StatisticSet(2, 80.0, 20.0, 60.0)  # Average 40 %
    assert published[("MemoryUtilization", proxy)].value == StatisticSet(3, 60.0, 10.0, 30.0)
    assert all(d.unit == "Percent" and d.namespace == "AWS/ECS" for d in published.values())


def test_cluster_name_from_an_arn() -> None:
    assert cluster_name("arn:aws:ecs:us-east-1:123456789012:cluster/llm-proxy") == "llm-proxy"
    assert cluster_name("llm-proxy") == "llm-proxy"


def test_client_backends_are_counted_from_postgres_process_titles() -> None:
    titles = [
        "postgres: io worker 0",
        "postgres: checkpointer ",
        "postgres: background writer ",
        "postgres: walwriter ",
        "postgres: autovacuum launcher ",
        "postgres: autovacuum worker llmproxy",
        "postgres: logical replication launcher ",
        "postgres: llmproxy llmproxy 127.0.0.1(48416) idle",
        "postgres: llmproxy llmproxy 127.0.0.1(48424) SELECT",
        "postgres: postgres postgres [local] idle",
        "postgres: parallel worker for PID 6843 ",
    ]
    assert client_backends(titles) == 3


@pytest.mark.parametrize(
    ("cores", "acu"),
    [(0.0, 0.5), (0.05, 0.5), (0.126, 1.0), (0.25, 1.0), (0.3, 1.5), (0.5, 2.0), (3.0, 4.0)],
)
def test_serverless_capacity_rounds_up_to_half_acus_within_the_range(cores: float, acu: float) -> None:
    assert serverless_capacity(cores, 0.5, 4.0) == acu


def test_rds_publishes_connections_cpu_and_capacity_per_cluster() -> None:
    cluster = {
        "DBClusterIdentifier": "db-1",
        "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 8.0},
    }
    published = by_key(
        rds_datums([cluster, {"DBClusterIdentifier": "provisioned"}], connections=7, cpu_cores=0.5)
    )
    one = (("DBClusterIdentifier", "db-1"),)
    assert published[("DatabaseConnections", one)].value == 7
    assert published[("ServerlessDatabaseCapacity", one)].value == 2.0
    assert ("ServerlessDatabaseCapacity", (("DBClusterIdentifier", "provisioned"),)) not in published
    cpu = published[("CPUUtilization", one)].value
    assert isinstance(cpu, float) and 0 < cpu <= 50  # half a core of at least one
    first = by_key(rds_datums([cluster], connections=1, cpu_cores=None))  # CPU needs a second reading
    assert {name for name, _ in first} == {"DatabaseConnections"}


INFO = {
    "connected_clients": 4,
    "evicted_keys": 10,
    "used_memory": 40 * 2**20,
    "maxmemory": 0,
    "used_cpu_sys_main_thread": 1.0,
    "used_cpu_user_main_thread": 2.0,
}


def test_elasticache_publishes_per_member_with_and_without_the_node() -> None:
    group = {"MemberClusters": ["rg-001", "rg-002"], "CacheNodeType": "cache.t4g.micro"}
    later = {**INFO, "connected_clients": 5, "evicted_keys": 13, "used_cpu_user_main_thread": 2.5}
    published = by_key(cache_datums([group], later, INFO, elapsed_s=5.0))
    for member in ("rg-001", "rg-002"):
        for dimensions in (
            (("CacheClusterId", member),),
            (("CacheClusterId", member), ("CacheNodeId", "0001")),
        ):
            assert published[("CurrConnections", dimensions)].value == 4  # not the one reading INFO
            assert published[("Evictions", dimensions)].value == 3
            assert published[("EngineCPUUtilization", dimensions)].value == pytest.approx(
                10.0
            )  # 0.5 s of 5 s
            # 40 MiB of a t4g.micro's 0.5 GiB less 25 % reserved
            memory = published[("DatabaseMemoryUsagePercentage", dimensions)].value
            assert memory == pytest.approx(40 / (512 * 0.75) * 100)
    assert len(published) == 2 * 2 * 4


def test_elasticache_counts_evictions_again_after_a_restart_and_not_in_the_first_sample() -> None:
    group = {"MemberClusters": ["rg-001"], "CacheNodeType": "cache.t4g.micro"}
    first = {name for name, _ in by_key(cache_datums([group], INFO, None, 0.0))}
    assert first == {"CurrConnections", "DatabaseMemoryUsagePercentage"}
    restarted = {**INFO, "evicted_keys": 2, "used_cpu_sys_main_thread": 0.0, "used_cpu_user_main_thread": 0.1}
    published = by_key(cache_datums([group], restarted, INFO, 5.0))
    assert published[("Evictions", (("CacheClusterId", "rg-001"),))].value == 2
    assert ("EngineCPUUtilization", (("CacheClusterId", "rg-001"),)) not in published


def test_memory_percentage_is_of_maxmemory_when_set_and_unknown_for_an_unknown_node_type() -> None:
    assert memory_limit_bytes({**INFO, "maxmemory": 1000}, "cache.x1.unknown") == 1000
    assert memory_limit_bytes(INFO, "cache.x1.unknown") is None
    assert memory_limit_bytes(INFO, "cache.r7g.large") == pytest.approx(13.07 * 2**30 * 0.75)


def test_calls_group_datums_by_namespace_within_the_api_limit() -> None:
    timestamp = datetime.now(UTC)
    datums = [
        Datum("AWS/ECS", "CPUUtilization", (("ServiceName", f"s{i}"),), "Percent", 1.0) for i in range(1500)
    ]
    datums.append(Datum("AWS/RDS", "DatabaseConnections", (), "Count", StatisticSet(2, 3.0, 1.0, 2.0)))
    made = calls(datums, timestamp)
    assert [(c.namespace, len(c.items)) for c in made] == [
        ("AWS/ECS", 1000),
        ("AWS/ECS", 500),
        ("AWS/RDS", 1),
    ]
    assert made[2].items[0]["StatisticValues"] == {
        "SampleCount": 2.0,
        "Sum": 3.0,
        "Minimum": 1.0,
        "Maximum": 2.0,
    }
    assert made[0].items[0]["Timestamp"] == timestamp and made[0].items[0]["Value"] == 1.0


@pytest.fixture
def emulator_port() -> Iterator[tuple[int, Any]]:
    """A free port where an emulator (moto with devenv's metric queries) starts when the test calls
    the second item."""
    from moto.server import DomainDispatcherApplication, create_backend_app

    moto_patches.install()
    port = free_port()
    servers = []

    def start() -> None:
        server = make_server(
            "127.0.0.1", port, DomainDispatcherApplication(create_backend_app), threaded=True
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)

    yield port, start
    for server in servers:
        server.shutdown()


def test_publishing_waits_out_a_missing_emulator_keeping_a_bounded_buffer(
    emulator_port: tuple[int, Any],
) -> None:
    port, start_emulator = emulator_port
    cloudwatch = boto3.client(
        "cloudwatch",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=CLIENT_CONFIG,
    )
    counter = iter(range(1, 1000))
    source = lambda: [Datum("Test/Metrics", "Samples", (("Run", str(port)),), "Count", next(counter))]  # noqa: E731
    collector = MetricsCollector({"test": source}, Publisher(cloudwatch, capacity=3), interval_s=60)
    collector.publisher.start()
    try:
        for _ in range(5):
            collector.sample()  # returns at once although nothing answers
        wait_for(lambda: collector.publisher.dropped == 2)
        assert collector.publisher.pending() == 3 and collector.publisher.published == 0
        start_emulator()
        wait_for(lambda: collector.publisher.pending() == 0, timeout_s=30)
        assert collector.publisher.published == 3
    finally:
        collector.stop()
    now = datetime.now(UTC)
    [point] = cloudwatch.get_metric_statistics(
        Namespace="Test/Metrics",
        MetricName="Samples",
        Dimensions=[{"Name": "Run", "Value": str(port)}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=600,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]
    assert (point["SampleCount"], point["Sum"]) == (3, 3 + 4 + 5)  # the oldest two were dropped


def test_a_distribution_keeps_distinct_values_with_counts_in_datums_of_at_most_150() -> None:
    [small] = Distribution.of([0.00101, 0.00099, 0.2])
    assert small.counts == ((0.001, 2), (0.2, 1))
    wide = Distribution.of([i / 1000 for i in range(400)])
    assert [len(d.counts) for d in wide] == [150, 150, 100]
    assert Distribution.of([]) == []
    item = Datum("AWS/ApplicationELB", "TargetResponseTime", (), "Seconds", small).api(datetime.now(UTC))
    assert (item["Values"], item["Counts"]) == ([0.001, 0.2], [2.0, 1.0]) and "Value" not in item
