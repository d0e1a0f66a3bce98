"""scaling.suspend / scaling.resume against the real emulator: a run holds its task count and gives the
scalable target back as it found it (suspended stays suspended when `autoscaling = false` did it)."""

from __future__ import annotations

from typing import Any

import pytest

from devenv.failover.actions import run_action
from devenv.failover.target import Target
from devenv.targets import scaling
from devenv.targets.endpoints import Endpoint
from devenv.targets.local import client

REGION = "us-east-1"


@pytest.fixture(scope="module")
def target(scaled_emulator: str) -> Target:
    def make(service: str) -> Any:
        return client(service, scaled_emulator, REGION)

    ecs = make("ecs")
    ecs.create_cluster(clusterName="fo")
    ecs.register_task_definition(
        family="fo",
        containerDefinitions=[{"name": "proxy", "image": "llmproxy:local", "memory": 512, "essential": True}],
    )
    for name in ("proxy", "dispatcher"):
        ecs.create_service(cluster="fo", serviceName=name, taskDefinition="fo", desiredCount=1)
    make("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId="service/fo/proxy",
        ScalableDimension=scaling.DIMENSION,
        MinCapacity=1,
        MaxCapacity=4,
    )
    return Target("local", Endpoint("http://127.0.0.1:9", None, "test"), make, cluster="fo")


def suspended_state(target: Target) -> dict[str, bool]:
    [found] = scaling.ecs_targets(target.client("application-autoscaling"), ["service/fo/proxy"])
    return dict(found["SuspendedState"])


@pytest.mark.parametrize("before", [scaling.RESUMED, scaling.SUSPENDED])
def test_a_run_suspends_scaling_and_gives_it_back_as_it_was(target: Target, before: dict[str, bool]) -> None:
    scaling.set_suspended(target.client("application-autoscaling"), "service/fo/proxy", before)
    done = run_action(target, "scaling.suspend", {"service": "proxy"})
    assert done.status == "done" and "suspended for the run" in done.detail
    assert suspended_state(target) == scaling.SUSPENDED
    assert run_action(target, "scaling.resume", {"service": "proxy"}).status == "done"
    assert suspended_state(target) == before
    again = run_action(target, "scaling.resume", {"service": "proxy"})
    assert again.status == "skipped"


def test_a_service_nothing_scales_is_skipped_saying_so(target: Target) -> None:
    skipped = run_action(target, "scaling.suspend", {"service": "dispatcher"})
    assert skipped.status == "skipped" and "no scalable target" in skipped.detail
