"""What the target's own monitoring says about a run: CloudWatch metrics, alarm states, scaling activities
and the proxy service's task count, read through the AWS APIs alone, so a local and an AWS run are
compared on the same signals.

- Metrics (GetMetricData, one CloudWatch minute a point: 60 s on AWS, 60 / time_scale locally):
  AWS/ApplicationELB RequestCount, HTTPCode_ELB_5XX_Count, HTTPCode_Target_5XX_Count {LoadBalancer},
  HealthyHostCount, UnHealthyHostCount {LoadBalancer, TargetGroup}, AWS/ECS CPUUtilization
  {ClusterName, ServiceName}. Counts are the Sum per point as CloudWatch returns it (locally over the
  compressed minute: real timestamps, so 1/time_scale of an AWS minute's count for the same traffic).
- Running task count: sampled from ECS DescribeServices (runningCount, desiredCount) every second while
  the run lasts, on both targets. CloudWatch has it only with Container Insights (ECS/ContainerInsights
  RunningTaskCount), which the stack leaves off by default (cost), and ECS service events do not record
  a StopTask or a crashed task, so neither would show a killed task.
- Alarms: the stack's (named `LlmProxyStack-...`) and its target tracking alarms
  (`TargetTracking-service/<cluster>/...`): each one's state over the run from DescribeAlarmHistory.
- Scaling activities of the service (DescribeScalingActivities, not-scaled ones included) and its ECS
  service events in the run's window.

Times are seconds since the run's start (`t`), the reports' own axis. A signal that cannot be read is
an entry of `errors`, never an exception: the run's verdict stands without it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devenv.stack_names import NAME_PREFIX, STACK_NAME
from devenv.targets.aws_api import AwsApi

CLUSTER = NAME_PREFIX
SERVICE = "proxy"
SAMPLE_S = 1.0
MAX_POINTS = 1440  # GetMetricData points per metric asked for at most (a day of minutes)


@dataclass(frozen=True)
class MetricSpec:
    key: str  # the report's name for it
    namespace: str
    name: str
    stat: str
    dimensions: tuple[str, ...]  # which of the resources' dimensions it carries


METRICS = (
    MetricSpec("request_count", "AWS/ApplicationELB", "RequestCount", "Sum", ("LoadBalancer",)),
    MetricSpec("elb_5xx", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "Sum", ("LoadBalancer",)),
    MetricSpec("target_5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "Sum", ("LoadBalancer",)),
    MetricSpec(
        "healthy_hosts", "AWS/ApplicationELB", "HealthyHostCount", "Minimum", ("LoadBalancer", "TargetGroup")
    ),
    MetricSpec(
        "unhealthy_hosts",
        "AWS/ApplicationELB",
        "UnHealthyHostCount",
        "Maximum",
        ("LoadBalancer", "TargetGroup"),
    ),
    MetricSpec("cpu_percent", "AWS/ECS", "CPUUtilization", "Average", ("ClusterName", "ServiceName")),
)


def _error(what: str, exc: Exception) -> str:
    return f"{what}: {type(exc).__name__}: {exc}"


@dataclass
class TaskCountSampler:
    """The service's running and desired task count, every `interval_s`, from a daemon thread."""

    api: AwsApi
    cluster: str = CLUSTER
    service: str = SERVICE
    interval_s: float = SAMPLE_S
    samples: list[dict[str, float]] = field(default_factory=list)
    error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TaskCountSampler:
        self._thread = threading.Thread(target=self._run, name="task-count-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            ecs = self.api.make_client("ecs")
        except Exception as exc:  # no SDK or credentials: the report says so
            self.error = _error("ECS DescribeServices", exc)
            return
        while not self._stop.is_set():
            try:
                [described] = ecs.describe_services(cluster=self.cluster, services=[self.service])["services"]
                self.samples.append(
                    {
                        "at": time.time(),
                        "running": described["runningCount"],
                        "desired": described["desiredCount"],
                    }
                )
            except Exception as exc:  # keep sampling; the first failure is reported
                self.error = self.error or _error("ECS DescribeServices", exc)
            self._stop.wait(self.interval_s)


def read(
    api: AwsApi,
    started_at: float,
    ended_at: float,
    task_counts: TaskCountSampler | None = None,
    cluster: str = CLUSTER,
    service: str = SERVICE,
) -> dict[str, Any]:
    """The signals of the run between two epoch times; what failed to read is named in `errors`."""
    errors: list[str] = []
    signals: dict[str, Any] = {
        "started_at": datetime.fromtimestamp(started_at, UTC).isoformat(),
        "duration_s": round(ended_at - started_at, 3),
        "time_scale": None,
        "errors": errors,
    }
    try:
        signals["time_scale"] = api.time_scale()
    except Exception as exc:
        errors.append(_error("time_scale", exc))
    scale = signals["time_scale"] or 1.0
    period = max(1, round(60 / scale))
    signals["period_s"] = period
    if task_counts is not None:
        signals["task_count"] = [
            {"t": round(s["at"] - started_at, 3), "running": s["running"], "desired": s["desired"]}
            for s in task_counts.samples
        ]
        if task_counts.error:
            errors.append(task_counts.error)

    def attempt(key: str, what: str, fn: Any, *args: Any) -> None:
        try:
            signals[key] = fn(*args)
        except Exception as exc:  # one signal missing never hides the others or the verdict
            errors.append(_error(what, exc))

    start = datetime.fromtimestamp(started_at, UTC)
    end = datetime.fromtimestamp(ended_at, UTC)
    attempt("metrics", "CloudWatch GetMetricData", _metrics, api, cluster, service, start, end, period)
    attempt("alarms", "CloudWatch alarms", _alarms, api, cluster, start, end)
    attempt(
        "scaling_activities",
        "Application Auto Scaling DescribeScalingActivities",
        _activities,
        api,
        f"service/{cluster}/{service}",
        start,
        end,
    )
    attempt("service_events", "ECS DescribeServices events", _events, api, cluster, service, start, end)
    return signals


def _rel(moment: datetime | float, start: datetime) -> float:
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(float(moment), UTC)
    return round((moment - start).total_seconds(), 3)


def _dimensions(api: AwsApi, cluster: str, service: str) -> dict[str, str]:
    """LoadBalancer and TargetGroup as AWS formats them (ARN resource parts) for the service's target
    group, plus ClusterName and ServiceName."""
    ecs, elbv2 = api.make_client("ecs"), api.make_client("elbv2")
    [described] = ecs.describe_services(cluster=cluster, services=[service])["services"]
    dims = {"ClusterName": cluster.rsplit(":cluster/", 1)[-1], "ServiceName": service}
    groups = [lb["targetGroupArn"] for lb in described.get("loadBalancers", []) if lb.get("targetGroupArn")]
    if groups:
        [group] = elbv2.describe_target_groups(TargetGroupArns=groups[:1])["TargetGroups"]
        dims["TargetGroup"] = group["TargetGroupArn"].split(":", 5)[5]
        if group.get("LoadBalancerArns"):
            dims["LoadBalancer"] = group["LoadBalancerArns"][0].split(":loadbalancer/", 1)[1]
    return dims


def _metrics(
    api: AwsApi, cluster: str, service: str, start: datetime, end: datetime, period: int
) -> dict[str, list[dict[str, float]]]:
    dims = _dimensions(api, cluster, service)
    wanted = [m for m in METRICS if all(d in dims for d in m.dimensions)]
    missing = [m.key for m in METRICS if m not in wanted]
    if missing:
        raise LookupError(f"the service {service} has no load balancer: no {', '.join(missing)}")
    # whole periods around the run, at most MAX_POINTS of them
    first = start - timedelta(seconds=start.timestamp() % period)
    last = max(end, first + timedelta(seconds=period))
    if (last - first).total_seconds() / period > MAX_POINTS:
        first = last - timedelta(seconds=period * MAX_POINTS)
    queries = [
        {
            "Id": f"m{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": m.namespace,
                    "MetricName": m.name,
                    "Dimensions": [{"Name": d, "Value": dims[d]} for d in m.dimensions],
                },
                "Period": period,
                "Stat": m.stat,
            },
            "ReturnData": True,
        }
        for index, m in enumerate(wanted)
    ]
    cloudwatch = api.make_client("cloudwatch")
    found: dict[str, list[dict[str, float]]] = {m.key: [] for m in wanted}
    token: str | None = None
    while True:
        page = cloudwatch.get_metric_data(
            MetricDataQueries=queries,
            StartTime=first,
            EndTime=last + timedelta(seconds=period),
            ScanBy="TimestampAscending",
            **({"NextToken": token} if token else {}),
        )
        for result in page["MetricDataResults"]:
            key = wanted[int(result["Id"][1:])].key
            found[key] += [
                {"t": _rel(at, start), "value": round(float(value), 3)}
                for at, value in zip(result["Timestamps"], result["Values"], strict=True)
            ]
        token = page.get("NextToken")
        if not token:
            break
    for points in found.values():
        points.sort(key=lambda p: p["t"])
    return found


def _is_ours(name: str, cluster: str) -> bool:
    return name.startswith(f"{STACK_NAME}-") or name.startswith(f"TargetTracking-service/{cluster}/")


def _alarms(api: AwsApi, cluster: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Each of the stack's alarms: its shape, its state at the start, its transitions during the run."""
    cloudwatch = api.make_client("cloudwatch")
    cluster_name = cluster.rsplit(":cluster/", 1)[-1]
    alarms = [
        alarm
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
        for alarm in page["MetricAlarms"]
        if _is_ours(alarm["AlarmName"], cluster_name)
    ]
    out = []
    for alarm in sorted(alarms, key=lambda a: a["AlarmName"]):
        history = [
            item
            for page in cloudwatch.get_paginator("describe_alarm_history").paginate(
                AlarmName=alarm["AlarmName"],
                HistoryItemType="StateUpdate",
                StartDate=start,
                ScanBy="TimestampAscending",
            )
            for item in page["AlarmHistoryItems"]
        ]
        changes = []
        for item in history:
            data = json.loads(item["HistoryData"])
            changes.append(
                {
                    "t": _rel(item["Timestamp"], start),
                    "from": data["oldState"]["stateValue"],
                    "to": data["newState"]["stateValue"],
                    "reason": data["newState"].get("stateReason", ""),
                }
            )
        # the state at the start: what the first later change left, else the state now
        initial = changes[0]["from"] if changes else alarm["StateValue"]
        window_s = _rel(end, start)
        out.append(
            {
                "name": alarm["AlarmName"],
                "metric": alarm.get("MetricName")
                or ", ".join(q["Id"] for q in alarm.get("Metrics", []) if q.get("ReturnData", True)),
                "threshold": alarm.get("Threshold"),
                "comparison": alarm.get("ComparisonOperator"),
                "period_s": alarm.get("Period")
                or next(
                    (q["MetricStat"]["Period"] for q in alarm.get("Metrics", []) if "MetricStat" in q), None
                ),
                "evaluation_periods": alarm.get("EvaluationPeriods"),
                "datapoints_to_alarm": alarm.get("DatapointsToAlarm") or alarm.get("EvaluationPeriods"),
                "treat_missing_data": alarm.get("TreatMissingData", "missing"),
                "state_at_start": initial,
                "transitions": [c for c in changes if c["t"] <= window_s],
            }
        )
    return out


def _activities(api: AwsApi, resource: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    client = api.make_client("application-autoscaling")
    found = []
    for page in client.get_paginator("describe_scaling_activities").paginate(
        ServiceNamespace="ecs", ResourceId=resource, IncludeNotScaledActivities=True
    ):
        for activity in page["ScalingActivities"]:
            if start <= activity["StartTime"] <= end:
                found.append(
                    {
                        "t": _rel(activity["StartTime"], start),
                        "description": activity["Description"],
                        "cause": activity["Cause"],
                        "status": activity["StatusCode"],
                        "scaled": "NotScaledReasons" not in activity,
                    }
                )
    return sorted(found, key=lambda a: a["t"])


def _events(api: AwsApi, cluster: str, service: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    [described] = api.make_client("ecs").describe_services(cluster=cluster, services=[service])["services"]
    return sorted(
        (
            {"t": _rel(e["createdAt"], start), "message": e["message"]}
            for e in described.get("events", [])
            if start <= e["createdAt"] <= end
        ),
        key=lambda e: e["t"],
    )


def state_at(alarm: dict[str, Any], t: float) -> str:
    """The alarm's state at `t` seconds into the run (from its state at the start and its changes)."""
    state = str(alarm["state_at_start"])
    for change in alarm["transitions"]:
        if change["t"] > t:
            break
        state = change["to"]
    return state
