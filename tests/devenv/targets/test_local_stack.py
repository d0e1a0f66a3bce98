"""`up`'s second half outside a whole stack: the AWS SDK's models that `up` reads while the services start
are all that the realizer and its metrics need afterwards."""

from __future__ import annotations

from pathlib import Path

import boto3

from devenv.config import Settings
from devenv.realize import stack_metrics
from devenv.realize.realizer import Realizer
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import Supervisor
from devenv.targets import local_stack


def test_the_realizer_and_its_metrics_read_no_sdk_model_after_load_sdk_models(
    inprocess_emulator: str, tmp_path: Path
) -> None:
    boto3.setup_default_session()  # a process that has read no model yet, as `up`'s supervisor at start
    local_stack.load_sdk_models(Settings(state_dir=tmp_path), inprocess_emulator)
    loader = boto3.DEFAULT_SESSION._session.get_component("data_loader")
    loaded = set(loader._cache)  # botocore's per-session cache of what it read: one key per file read

    realizer = Realizer(Supervisor(StateDir(tmp_path), facts={}), inprocess_emulator, "us-east-1", alb=None)
    collector = stack_metrics.start_collector(realizer, 1.0)
    collector.stop()
    realizer.shutdown()

    assert set(loader._cache) - loaded == set()
    made = [
        *(getattr(realizer, service) for service in ("ecs", "secretsmanager", "ssm", "rds", "elasticache")),
        *(getattr(realizer, service) for service in ("elbv2", "servicediscovery")),
        collector.publisher.cloudwatch,
    ]
    assert [client._loader for client in made] == [loader] * len(made)  # all from the default session
