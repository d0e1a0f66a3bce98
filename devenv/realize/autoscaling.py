"""Application Auto Scaling, locally: the stored target-tracking policies applied to realized services.

Every `period_s` the controller measures each scalable ECS service (average CPU of its task processes
against the task definition's CPU units; requests per target per minute from the proxy's /metrics) and
sets the service's desired count the way target tracking does: proportional to metric / target, within
the scalable target's min and max, scaling out as soon as the scale-out cooldown allows and in only when
every policy agrees and the scale-in cooldown has passed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

log = logging.getLogger("devenv.autoscaling")
SCALE_IN_MARGIN = 0.9  # target tracking scales in only when the metric is clearly below the target


@dataclass(frozen=True)
class Policy:
    name: str
    metric: str  # ECSServiceAverageCPUUtilization | ALBRequestCountPerTarget | ...
    target: float
    scale_out_cooldown_s: float
    scale_in_cooldown_s: float


@dataclass
class ScalableService:
    cluster: str
    service: str
    min_capacity: int
    max_capacity: int
    policies: list[Policy]
    last_scale_out: float = -math.inf
    last_scale_in: float = -math.inf


def proposed_capacity(current: int, metric: float, policy: Policy) -> int:
    """Target tracking: the capacity that brings the metric back to the target."""
    if current <= 0:
        return 1 if metric > 0 else 0
    if metric < policy.target * SCALE_IN_MARGIN or metric > policy.target:
        return max(1, math.ceil(current * metric / policy.target))
    return current


def decide(scalable: ScalableService, current: int, metrics: dict[str, float], now: float) -> int | None:
    """The new desired count, or None to leave it. Out if any policy wants out; in only if all want in."""
    wanted = [
        proposed_capacity(current, metrics[p.metric], p) for p in scalable.policies if p.metric in metrics
    ]
    if not wanted:
        return None
    desired = min(scalable.max_capacity, max(scalable.min_capacity, max(wanted)))
    cooldown_out = min(p.scale_out_cooldown_s for p in scalable.policies)
    cooldown_in = max(p.scale_in_cooldown_s for p in scalable.policies)
    if desired > current and now - scalable.last_scale_out >= cooldown_out:
        return desired
    if desired < current and now - max(scalable.last_scale_in, scalable.last_scale_out) >= cooldown_in:
        return desired
    return None


@dataclass
class TaskSample:
    """What the controller remembers of a task between two measurements."""

    cpu_units: float
    process: psutil.Process | None
    url: str | None
    requests: float | None = None


@dataclass
class AutoScaler:
    """Reads the policies from the emulator and applies them; call `tick` from the realizer's loop."""

    autoscaling: Any
    ecs: Any
    tasks_of: Callable[[str], list[tuple[int | None, str | None, float]]]  # service -> (pid, url, cpu units)
    period_s: float = 10.0
    services: dict[str, ScalableService] = field(default_factory=dict)
    samples: dict[tuple[str, int | None, str | None], TaskSample] = field(default_factory=dict)
    last_run: float = -math.inf
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def tick(self, now: float | None = None) -> None:
        """Measure and decide, once per `period_s` (0 turns the controller off)."""
        now = time.monotonic() if now is None else now
        if self.period_s <= 0 or now - self.last_run < self.period_s:
            return
        elapsed = now - self.last_run
        self.last_run = now
        self._read_policies()
        for key, scalable in self.services.items():
            metrics = self._measure(scalable, elapsed if math.isfinite(elapsed) else self.period_s)
            described = self.ecs.describe_services(cluster=scalable.cluster, services=[scalable.service])[
                "services"
            ]
            if not described or not metrics:
                continue
            current = int(described[0]["desiredCount"])
            desired = decide(scalable, current, metrics, now)
            if desired is None or desired == current:
                continue
            if desired > current:
                scalable.last_scale_out = now
            else:
                scalable.last_scale_in = now
            log.info("autoscaling %s: %d -> %d (%s)", key, current, desired, metrics)
            self.decisions.append(
                {"service": key, "from": current, "to": desired, "metrics": metrics, "at": time.time()}
            )
            del self.decisions[:-20]
            self.ecs.update_service(cluster=scalable.cluster, service=scalable.service, desiredCount=desired)

    def _read_policies(self) -> None:
        targets = self.autoscaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
        policies = self.autoscaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
        seen = set()
        for target in targets:
            resource = target["ResourceId"]  # service/<cluster>/<service>
            parts = resource.split("/")
            if len(parts) != 3 or target.get("ScalableDimension") != "ecs:service:DesiredCount":
                continue
            seen.add(resource)
            own = [
                Policy(
                    name=p["PolicyName"],
                    metric=cfg.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType", "custom"),
                    target=float(cfg["TargetValue"]),
                    scale_out_cooldown_s=float(cfg.get("ScaleOutCooldown", 300)),
                    scale_in_cooldown_s=float(cfg.get("ScaleInCooldown", 300)),
                )
                for p in policies
                if p["ResourceId"] == resource
                and p.get("PolicyType") == "TargetTrackingScaling"
                and (cfg := p.get("TargetTrackingScalingPolicyConfiguration", {}))
            ]
            existing = self.services.get(resource)
            self.services[resource] = ScalableService(
                cluster=parts[1],
                service=parts[2],
                min_capacity=int(target["MinCapacity"]),
                max_capacity=int(target["MaxCapacity"]),
                policies=own,
                last_scale_out=existing.last_scale_out if existing else -math.inf,
                last_scale_in=existing.last_scale_in if existing else -math.inf,
            )
        for gone in set(self.services) - seen:
            del self.services[gone]

    def _measure(self, scalable: ScalableService, elapsed_s: float) -> dict[str, float]:
        """Average CPU utilization (% of the task's CPU units) and requests per target per minute."""
        tasks = self.tasks_of(scalable.service)
        if not tasks:
            return {}
        cpu, requests = [], []
        for pid, url, units in tasks:
            key = (scalable.service, pid, url)
            sample = self.samples.get(key)
            if sample is None:
                process = _process(pid)
                if process is not None:
                    process.cpu_percent(None)  # the first call only starts the count
                self.samples[key] = TaskSample(units, process, url, _request_count(url))
                continue
            if sample.process is not None:
                with contextlib.suppress(psutil.Error):  # the task just ended
                    cpu.append(sample.process.cpu_percent(None) / max(units / 1024, 0.01))
            count = _request_count(url)
            if count is not None and sample.requests is not None:
                requests.append(max(0.0, count - sample.requests) * 60 / max(elapsed_s, 0.001))
            sample.requests = count
        metrics: dict[str, float] = {}
        if cpu:
            metrics["ECSServiceAverageCPUUtilization"] = sum(cpu) / len(cpu)
        if requests:
            metrics["ALBRequestCountPerTarget"] = sum(requests) / len(requests)
        return metrics


def _process(pid: int | None) -> psutil.Process | None:
    try:
        return psutil.Process(pid) if pid else None
    except psutil.Error:
        return None


def _request_count(url: str | None) -> float | None:
    """The proxy's own request counter (GET /metrics), or None when the task has none."""
    if not url:
        return None
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=1) as response:
            return float(json.loads(response.read()).get("request_count"))
    except (OSError, ValueError, TypeError):
        return None
