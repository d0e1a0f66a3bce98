"""The metrics collector for a realized stack: every source the realizer's stack has, publishing into
the emulator it realizes (see `devenv.realize.metrics`)."""

from __future__ import annotations

from typing import Any

from botocore.config import Config

from devenv.realize.alb_metrics import AlbSource
from devenv.realize.datastore_metrics import CacheSource, RdsSource
from devenv.realize.ecs_metrics import EcsSource
from devenv.realize.metrics import MetricsCollector, Publisher, Source, sample_interval_s
from devenv.realize.realizer import Realizer, local_client

# A slow emulator must not stall the publisher for long, and its retries are the publisher's.
CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=5, retries={"total_max_attempts": 1})


def start_collector(realizer: Realizer, time_scale: float) -> MetricsCollector:
    """Start sampling the realizer's stack (ALB, ECS tasks, Aurora, ElastiCache); stop() it on the way down."""

    def client(service: str) -> Any:  # its own, with short timeouts: a slow emulator delays only metrics
        return local_client(service, realizer.endpoint, realizer.ecs.meta.region_name, CLIENT_CONFIG)

    sources: dict[str, Source] = {
        "ECS": EcsSource(realizer),
        "RDS": RdsSource(client("rds"), realizer.supervisor),
        "ElastiCache": CacheSource(client("elasticache"), realizer.supervisor),
    }
    if realizer.alb is not None:
        sources["ALB"] = AlbSource(realizer.alb)
    collector = MetricsCollector(sources, Publisher(client("cloudwatch")), sample_interval_s(time_scale))
    collector.start()
    return collector
