"""Network faults on AWS, through the Fault Injection Service where an equivalent exists.

Locally the fault proxy stands in front of Postgres and Redis; on AWS there is no such proxy, so:
- `refuse` N s -> `aws:ecs:task-network-blackhole-port` on the proxy tasks, egress to the endpoint's port;
- `latency` -> `aws:ecs:task-network-latency` on the proxy tasks, towards the endpoint's host;
- `cut` (close open connections once) and `clear` have no FIS action: skipped, with that reason.
Both ECS actions need `enableFaultInjection` on the task definition and a role FIS can assume
(`DEVENV_FIS_ROLE_ARN`); without them the action is skipped and the journal says why.
`template` is what would be sent (unit-tested); `run` sends it and waits for the experiment to end.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from devenv.failover.aws_calls import ActionFailed, Outcome, aws_call
from devenv.failover.target import Target

ROLE_ENV = "DEVENV_FIS_ROLE_ARN"
PORTS = {"aurora": 5432, "elasticache": 6379}
NO_EQUIVALENT = {
    "cut": "AWS FIS has no action that closes open connections once (use refuse: a port blackhole)",
    "clear": "FIS experiments end by themselves when their duration is up; nothing to clear",
}
DEFAULT_LATENCY_S = 60.0  # FIS needs a duration; an open-ended local latency lasts this long on AWS


def _duration(seconds: float) -> str:
    return f"PT{max(1, math.ceil(seconds))}S"


def template(
    kind: str, args: dict[str, Any], cluster_arn: str, service: str, role_arn: str, host: str | None
) -> dict[str, Any]:
    """The FIS experiment template for a network fault on the proxy tasks (kind refuse or latency)."""
    endpoint = args["endpoint"]
    if kind == "refuse":
        action_id = "aws:ecs:task-network-blackhole-port"
        parameters = {
            "duration": _duration(args["seconds"]),
            "port": str(PORTS[endpoint]),
            "protocol": "tcp",
            "trafficType": "egress",
            "useEcsFaultInjectionEndpoints": "true",
        }
    elif kind == "latency":
        action_id = "aws:ecs:task-network-latency"
        parameters = {
            "duration": _duration(args.get("seconds") or DEFAULT_LATENCY_S),
            "delayMilliseconds": str(int(args["ms"])),
            "jitterMilliseconds": "0",
            "useEcsFaultInjectionEndpoints": "true",
        }
        if host:
            parameters["sources"] = host
    else:
        raise ValueError(f"no FIS template for {kind}")
    return {
        "description": f"devenv failover: {kind} {endpoint} from the {service} tasks",
        "roleArn": role_arn,
        "stopConditions": [{"source": "none"}],
        "targets": {
            "tasks": {
                "resourceType": "aws:ecs:task",
                "selectionMode": "ALL",
                "parameters": {"cluster": cluster_arn, "service": service},
            }
        },
        "actions": {
            "fault": {"actionId": action_id, "parameters": parameters, "targets": {"Tasks": "tasks"}}
        },
        "tags": {"devenv": "failover"},
    }


def run(target: Target, kind: str, args: dict[str, Any]) -> Outcome:
    if kind in NO_EQUIVALENT:
        return Outcome("skipped", NO_EQUIVALENT[kind])
    role = os.environ.get(ROLE_ENV)
    if not role:
        return Outcome("skipped", f"no IAM role for FIS: set {ROLE_ENV} to a role FIS can assume")
    ecs = target.client("ecs")
    service = aws_call(ecs.describe_services, cluster=target.cluster, services=["proxy"])["services"][0]
    task_def = aws_call(ecs.describe_task_definition, taskDefinition=service["taskDefinition"])
    if not task_def["taskDefinition"].get("enableFaultInjection"):
        return Outcome(
            "skipped",
            "the proxy's task definition does not set enableFaultInjection, which FIS's ECS network actions need",
        )
    body = template(kind, args, service["clusterArn"], "proxy", role, None)
    fis = target.client("fis")
    created = aws_call(fis.create_experiment_template, **body)["experimentTemplate"]
    experiment = aws_call(fis.start_experiment, experimentTemplateId=created["id"])["experiment"]
    deadline = time.monotonic() + 900
    state = experiment["state"]["status"]
    while state not in ("running", "completed", "stopped", "failed") and time.monotonic() < deadline:
        time.sleep(2)
        state = aws_call(fis.get_experiment, id=experiment["id"])["experiment"]["state"]["status"]
    if state == "failed":
        raise ActionFailed(f"FIS experiment {experiment['id']} failed")
    return Outcome(
        "done", f"FIS experiment {experiment['id']} ({body['actions']['fault']['actionId']}) {state}"
    )
