"""AWS/ApplicationELB metrics measured at the ALB mirror, with the ALB's names, dimensions and units.

Requests come from the mirror's access logs (`devenv.services.access_log`: exact per request), target
health from the mirror's own health-check state machine (`devenv.realize.alb`). As an ALB does:
- RequestCount counts requests for which a target was chosen; a request the mirror answered alone (no
  target registered) is only an HTTPCode_ELB_5XX_Count;
- HTTPCode_Target_*_Count are the targets' statuses; HTTPCode_ELB_*_Count the mirror's own
  (LoadBalancer dimension only, as AWS publishes them);
- TargetResponseTime is each target's time to response headers, one distribution per sample (its
  values to 0.1 ms with their counts), so a minute's Average is per request and its percentiles
  (the dashboard's p50, p99) are CloudWatch's;
- RequestCountPerTarget is a target group's requests divided by its healthy targets (all registered
  ones when none is healthy), published with {TargetGroup} alone (what target tracking reads) and with
  {LoadBalancer, TargetGroup}; its Sum over a minute is AWS's value;
- request metrics are published only for samples with requests (AWS reports nothing when no request
  flows); HealthyHostCount and UnHealthyHostCount every sample. Targets still in their initial health
  checks count in neither. There is no AvailabilityZone dimension locally.
"""

from __future__ import annotations

from dataclasses import dataclass

from devenv.realize.alb import AlbMirror
from devenv.realize.metrics import Datum, Distribution
from devenv.services.access_log import LogTail, Tally, tally
from devenv.services.caddy_config import access_log_path

NAMESPACE = "AWS/ApplicationELB"


def load_balancer_dimension(arn: str) -> str:
    """The LoadBalancer dimension of an ALB: its ARN's resource part after `loadbalancer/`
    (`app/<name>/<id>`)."""
    return _arn_resource(arn, "loadbalancer/", "app/")


def target_group_dimension(arn: str) -> str:
    """The TargetGroup dimension: the target group ARN's resource part (`targetgroup/<name>/<id>`)."""
    return "targetgroup/" + _arn_resource(arn, "targetgroup/", "")


def _arn_resource(arn: str, marker: str, prefix: str) -> str:
    parts = arn.split(":", 5)
    resource = parts[5] if len(parts) == 6 and parts[2] == "elasticloadbalancing" else ""
    suffix = resource.removeprefix(marker) if resource.startswith(marker) else ""
    names = suffix.removeprefix(prefix).split("/")
    if not suffix.startswith(prefix) or len(names) != 2 or not all(names):
        raise ValueError(
            f"{arn!r} is not an Elastic Load Balancing ARN of the form ...:{marker}{prefix}NAME/ID"
        )
    return suffix


@dataclass(frozen=True)
class GroupSample:
    """One target group over one sample: its requests, and its targets' health at the sample's end."""

    target_group: str  # the TargetGroup dimension
    requests: Tally
    healthy: int
    unhealthy: int
    registered: int


def alb_datums(load_balancer: str, groups: list[GroupSample]) -> list[Datum]:
    """The datapoints of one sample of the ALB `load_balancer` (its dimension) and its target groups."""
    lb = (("LoadBalancer", load_balancer),)
    datums: list[Datum] = []
    merged = Tally()
    for group in groups:
        both = (*lb, ("TargetGroup", group.target_group))
        datums += _request_datums(both, group.requests, elb=False)
        if group.requests.requests:
            per_target = group.requests.requests / max(1, group.healthy or group.registered)
            for dimensions in ((("TargetGroup", group.target_group),), both):
                datums.append(Datum(NAMESPACE, "RequestCountPerTarget", dimensions, "None", per_target))
        datums.append(Datum(NAMESPACE, "HealthyHostCount", both, "Count", group.healthy))
        datums.append(Datum(NAMESPACE, "UnHealthyHostCount", both, "Count", group.unhealthy))
        merged.requests += group.requests.requests
        merged.target_codes.update(group.requests.target_codes)
        merged.elb_codes.update(group.requests.elb_codes)
        merged.target_times_s += group.requests.target_times_s
    return _request_datums(lb, merged, elb=True) + datums


def _request_datums(dimensions: tuple[tuple[str, str], ...], requests: Tally, elb: bool) -> list[Datum]:
    datums = []
    if requests.requests:
        datums.append(Datum(NAMESPACE, "RequestCount", dimensions, "Count", requests.requests))
    for times in Distribution.of(requests.target_times_s):
        datums.append(Datum(NAMESPACE, "TargetResponseTime", dimensions, "Seconds", times))
    for code, count in sorted(requests.target_codes.items()):
        datums.append(Datum(NAMESPACE, f"HTTPCode_Target_{code}_Count", dimensions, "Count", count))
    if elb:
        for code, count in sorted(requests.elb_codes.items()):
            datums.append(Datum(NAMESPACE, f"HTTPCode_ELB_{code}_Count", dimensions, "Count", count))
    return datums


class AlbSource:
    """Samples the ALB mirror: the lines its access logs gained, and its targets' health."""

    def __init__(self, alb: AlbMirror) -> None:
        self.alb = alb
        self._tails: dict[str, LogTail] = {}

    def __call__(self) -> list[Datum]:
        if self.alb.arn is None or self.alb.access_log_dir is None:
            return []  # the mirror has not started (no ALB deployed yet), or logs nothing
        groups = []
        for arn, mirror in list(self.alb.mirrors.items()):
            tail = self._tails.get(arn)
            if tail is None:
                tail = self._tails[arn] = LogTail(access_log_path(self.alb.access_log_dir, mirror.group.name))
            states = [
                health.state for health in dict(mirror.health).values()
            ]  # a copy: the realizer updates it
            groups.append(
                GroupSample(
                    target_group_dimension(arn),
                    tally(tail.read_lines()),
                    healthy=states.count("healthy"),
                    unhealthy=states.count("unhealthy"),
                    registered=len(states),
                )
            )
        return alb_datums(load_balancer_dimension(self.alb.arn), groups)
