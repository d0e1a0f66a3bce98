"""What the dashboard page shows, read from a target through the AWS APIs alone (the same code for the
local cloud and AWS): the stack's CloudWatch dashboard with each widget's series from GetMetricData
(metric math evaluated by CloudWatch, or locally by the emulator), and beside it the ECS services with
their tasks and ALB target health, service events, alarms with their recent history, scaling activities
and the stack's outputs; and, a click away, each task's log tail.

A section that cannot be read is an entry of `errors` naming it; the others are still shown.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devenv.dashboard import body
from devenv.errors import TargetError
from devenv.runtime import logfiles
from devenv.stack_names import STACK_NAME
from devenv.targets.aws_api import AwsApi

DASHBOARD_TYPE = "AWS::CloudWatch::Dashboard"
EVENTS = 10  # the last service events per service
HISTORY = 5  # the last state changes per alarm
ACTIVITIES = 10
LOG_LINES = 200  # a task's log tail


class Reader:
    """One target's clients, made once and shared by the server's request threads (boto3 clients are
    thread-safe; making one costs ~50 ms).

    `logs_dir`: where the local stack's process logs are (the local cloud keeps no CloudWatch Logs of its
    tasks); None on AWS, where a task's log is its awslogs stream."""

    def __init__(self, api: AwsApi, logs_dir: Path | None = None, stack: str = STACK_NAME) -> None:
        self.api = api
        self.logs_dir = logs_dir
        self.stack = stack
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.api.make_client(service)
            return self._clients[service]

    def dashboard_name(self) -> str:
        """The stack's dashboard, from its CloudFormation resources (its name is generated)."""
        resources = self.client("cloudformation").describe_stack_resources(StackName=self.stack)[
            "StackResources"
        ]
        names = [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == DASHBOARD_TYPE]
        if not names:
            raise TargetError(
                f"the stack {self.stack} has no {DASHBOARD_TYPE}",
                "deploy the stack: `devenv up` or `devenv deploy`",
            )
        return str(names[0])

    def dashboard(self, start: float, end: float) -> dict[str, Any]:
        """The dashboard's widgets, each with its series' points (epoch seconds) in [start, end)."""
        name = self.dashboard_name()
        widgets = body.parse(self.client("cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"])
        scale = self.api.time_scale()
        shown = []
        for widget in widgets:
            entry: dict[str, Any] = {**asdict(widget), "points": {}, "error": None}
            if widget.series:
                try:
                    entry["points"] = self._points(body.queries(widget, scale), start, end)
                except Exception as exc:  # one widget's failure leaves the others drawn
                    entry["error"] = f"{type(exc).__name__}: {exc}"
            shown.append(entry)
        return {"name": name, "time_scale": scale, "widgets": shown}

    def _points(
        self, queries: list[dict[str, Any]], start: float, end: float
    ) -> dict[str, list[list[float]]]:
        found: dict[str, list[list[float]]] = {q["Id"]: [] for q in queries}
        token = None
        while True:
            page = self.client("cloudwatch").get_metric_data(
                MetricDataQueries=queries,
                StartTime=datetime.fromtimestamp(start, UTC),
                EndTime=datetime.fromtimestamp(end, UTC),
                ScanBy="TimestampAscending",
                **({"NextToken": token} if token else {}),
            )
            for result in page["MetricDataResults"]:
                found[result["Id"]] += [
                    [at.timestamp(), float(value)]
                    for at, value in zip(result["Timestamps"], result["Values"], strict=True)
                ]
            token = page.get("NextToken")
            if not token:
                return found

    def services(self) -> list[dict[str, Any]]:
        """Each ECS service of the stack's clusters: counts, tasks (status, health, age), last events,
        and its target groups' health as the ALB sees it."""
        ecs, elbv2 = self.client("ecs"), self.client("elbv2")
        now = time.time()
        found = []
        for cluster in ecs.list_clusters()["clusterArns"]:
            arns = ecs.list_services(cluster=cluster)["serviceArns"]
            if not arns:
                continue
            for service in ecs.describe_services(cluster=cluster, services=arns)["services"]:
                task_arns = ecs.list_tasks(cluster=cluster, serviceName=service["serviceName"])["taskArns"]
                tasks = ecs.describe_tasks(cluster=cluster, tasks=task_arns)["tasks"] if task_arns else []
                targets = [
                    {"id": f"{t['Target']['Id']}:{t['Target'].get('Port', '')}", **_health(t)}
                    for lb in service.get("loadBalancers", [])
                    if lb.get("targetGroupArn")
                    for t in elbv2.describe_target_health(TargetGroupArn=lb["targetGroupArn"])[
                        "TargetHealthDescriptions"
                    ]
                ]
                found.append(
                    {
                        "cluster": cluster.rsplit("/", 1)[-1],
                        "name": service["serviceName"],
                        "status": service.get("status"),
                        "desired": service.get("desiredCount"),
                        "running": service.get("runningCount"),
                        "pending": service.get("pendingCount"),
                        "tasks": [_task(task, now) for task in tasks],
                        "targets": targets,
                        "events": [
                            {"at": e["createdAt"].timestamp(), "message": e["message"]}
                            for e in service.get("events", [])[:EVENTS]
                        ],
                    }
                )
        return found

    def alarms(self) -> list[dict[str, Any]]:
        """Every metric alarm of the target (the stack's and its target tracking ones), with its latest
        state changes."""
        cloudwatch = self.client("cloudwatch")
        found = []
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
            for alarm in page["MetricAlarms"]:
                history = cloudwatch.describe_alarm_history(
                    AlarmName=alarm["AlarmName"], HistoryItemType="StateUpdate", MaxRecords=HISTORY
                )["AlarmHistoryItems"]
                found.append(
                    {
                        "name": alarm["AlarmName"],
                        "state": alarm["StateValue"],
                        "reason": alarm.get("StateReason", ""),
                        "since": alarm["StateUpdatedTimestamp"].timestamp(),
                        "history": [
                            {"at": item["Timestamp"].timestamp(), "summary": item["HistorySummary"]}
                            for item in sorted(history, key=lambda i: i["Timestamp"], reverse=True)
                        ],
                    }
                )
        return sorted(found, key=lambda a: (a["state"] != "ALARM", a["name"]))

    def scaling_activities(self) -> list[dict[str, Any]]:
        activities = self.client("application-autoscaling").describe_scaling_activities(
            ServiceNamespace="ecs", IncludeNotScaledActivities=True, MaxResults=ACTIVITIES
        )["ScalingActivities"]
        return [
            {
                "at": a["StartTime"].timestamp(),
                "resource": a["ResourceId"],
                "description": a["Description"],
                "cause": a["Cause"],
                "status": a["StatusCode"],
            }
            for a in sorted(activities, key=lambda a: a["StartTime"], reverse=True)[:ACTIVITIES]
        ]

    def outputs(self) -> list[dict[str, str]]:
        [described] = self.client("cloudformation").describe_stacks(StackName=self.stack)["Stacks"]
        return [
            {"key": o["OutputKey"], "value": o["OutputValue"], "description": o.get("Description", "")}
            for o in described.get("Outputs", [])
        ]

    def task_log(self, cluster: str, service: str, task: str, lines: int = LOG_LINES) -> dict[str, Any]:
        """The last `lines` of a task's log and where they come from: locally the task's process log, read
        as `devenv logs` reads it; on AWS the awslogs stream of each of its containers."""
        if self.logs_dir is not None:
            path = self.logs_dir / f"{service}-{task[:8]}.log"
            if not path.is_file():
                raise TargetError(f"no log for task {task} of {service}: {path} does not exist")
            return {
                "source": f"{path} (the local cloud keeps no CloudWatch Logs of its tasks; "
                "`devenv logs` reads the same file)",
                "lines": logfiles.tail_lines(path, lines),
            }
        return self._awslogs(cluster, task, lines)

    def _awslogs(self, cluster: str, task: str, lines: int) -> dict[str, Any]:
        """CloudWatch Logs `get_log_events` of the task's streams: `<prefix>/<container>/<task id>` in
        the group its task definition names (the awslogs driver's naming)."""
        ecs, logs = self.client("ecs"), self.client("logs")
        described = ecs.describe_tasks(cluster=cluster, tasks=[task])["tasks"]
        if not described:
            raise TargetError(f"no task {task} in cluster {cluster}")
        definition = ecs.describe_task_definition(taskDefinition=described[0]["taskDefinitionArn"])
        task_id = described[0]["taskArn"].rsplit("/", 1)[-1]
        streams, found = [], []
        for container in definition["taskDefinition"]["containerDefinitions"]:
            config = container.get("logConfiguration") or {}
            options = config.get("options") or {}
            if config.get("logDriver") != "awslogs" or "awslogs-group" not in options:
                continue
            group = options["awslogs-group"]
            stream = f"{options.get('awslogs-stream-prefix', 'ecs')}/{container['name']}/{task_id}"
            streams.append(f"{group} {stream}")
            try:
                events = logs.get_log_events(
                    logGroupName=group, logStreamName=stream, limit=lines, startFromHead=False
                )["events"]
            except logs.exceptions.ResourceNotFoundException:
                streams[-1] += " (not created yet: the container has logged nothing)"
                continue
            found += [(event["timestamp"], f"{container['name']} | {event['message']}") for event in events]
        if not streams:
            raise TargetError(
                f"task {task}'s containers log to no CloudWatch Logs stream (no awslogs driver)"
            )
        return {
            "source": "CloudWatch Logs " + ", ".join(streams),
            "lines": [line for _, line in sorted(found, key=lambda item: item[0])][-lines:],
        }

    def everything(self, start: float, end: float) -> dict[str, Any]:
        """The page's data: each section, or its error."""
        errors: list[str] = []
        document: dict[str, Any] = {"target": self.api.name, "start": start, "end": end, "errors": errors}
        sections: dict[str, Callable[[], Any]] = {
            "dashboard": lambda: self.dashboard(start, end),
            "services": self.services,
            "alarms": self.alarms,
            "scaling_activities": self.scaling_activities,
            "outputs": self.outputs,
        }
        for key, read in sections.items():
            try:
                document[key] = read()
            except Exception as exc:  # a section missing never hides the others
                document[key] = None
                errors.append(f"{key}: {_message(exc)}")
        return document


def _health(description: dict[str, Any]) -> dict[str, Any]:
    health = description.get("TargetHealth", {})
    return {"state": health.get("State"), "reason": health.get("Reason") or health.get("Description") or ""}


def _task(task: dict[str, Any], now: float) -> dict[str, Any]:
    started = task.get("startedAt") or task.get("createdAt")
    return {
        "id": task["taskArn"].rsplit("/", 1)[-1],
        "last_status": task.get("lastStatus"),
        "desired_status": task.get("desiredStatus"),
        "health": task.get("healthStatus"),
        "age_s": round(now - started.timestamp(), 1) if started else None,
    }


def _message(exc: Exception) -> str:
    if isinstance(exc, TargetError):
        return exc.message + (f" ({exc.hint})" if exc.hint else "")
    return f"{type(exc).__name__}: {exc}"


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, default=str)
