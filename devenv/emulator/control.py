"""The emulator's side channel to the realizer, and the fault APIs moto lacks.

The realizer learns what to do through the AWS API like any client; three things have no AWS API:
- a task's real status (the ECS agent's job): `POST /_devenv/ecs/tasks/<id>/status`;
- what the ALB side did with a task's target (ECS's job on AWS), for the service's events:
  `POST /_devenv/ecs/tasks/<id>/target-event`;
- faults asked of the emulator (`rds.failover_db_cluster`, `rds.reboot_db_instance`,
  `elasticache.reboot_cache_cluster`, `elasticache.test_failover`), which must become real faults on
  local processes: the emulator records them and `GET /_devenv/events?after=N` hands them out.
`GET /_devenv/clock` says how the emulator keeps time: its time_scale and metric retention.
`GET /_devenv/ecs/digest` changes whenever what the realizer reads of ECS changes (it reads again then).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from moto.core.responses import ActionResult
from moto.elasticache.exceptions import CacheClusterNotFound, ElastiCacheException, ReplicationGroupNotFound
from moto.elasticache.responses import ElastiCacheResponse
from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup
from moto.rds.models import RDSBackend

from devenv.emulator import metric_store, scheduler, service_events, time_scale

PREFIX = "/_devenv/"
_events: list[dict[str, Any]] = []
_seq = itertools.count(1)
_events_lock = threading.Lock()
# (target group ARN, "id:port") -> (state, reason, description), as the ALB mirror observed it
_target_health: dict[tuple[str, str], tuple[str, str | None, str | None]] = {}

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def record(kind: str, resource: str, **details: Any) -> dict[str, Any]:
    """Remember a fault for the realizer to carry out."""
    with _events_lock:
        event = {"seq": next(_seq), "kind": kind, "resource": resource, "at": time.time(), **details}
        _events.append(event)
        del _events[:-1000]
        return event


def events_after(seq: int) -> list[dict[str, Any]]:
    with _events_lock:
        return [e for e in _events if e["seq"] > seq]


def saved_state() -> dict[str, Any]:
    """What of this module the saved local cloud keeps (devenv.emulator.saved_cloud)."""
    with _events_lock:
        return {"events": list(_events), "target_health": dict(_target_health)}


def restore_state(saved: dict[str, Any]) -> None:
    """Back to `saved_state()`; new events are numbered after the saved ones."""
    global _seq
    with _events_lock:
        _events[:] = saved["events"]
        _seq = itertools.count(max((e["seq"] for e in _events), default=0) + 1)
    _target_health.clear()
    _target_health.update(saved["target_health"])


def deregister_every_target() -> None:
    """Every target leaves its group (the local cloud stopped: nothing listens at their ports)."""
    from moto.elbv2.models import elbv2_backends

    for account in elbv2_backends.values():
        for backend in account.values():
            for group in backend.target_groups.values():
                for target in list(group.targets.values()):
                    deregister_targets(group, [target])


class InvalidReplicationGroupState(ElastiCacheException):
    code = "InvalidReplicationGroupState"


def elasticache_reboot_cache_cluster(self: ElastiCacheResponse) -> ActionResult:
    cluster_id = self._get_param("CacheClusterId")
    backend = self.elasticache_backend
    cluster = backend.cache_clusters.get(cluster_id)
    if cluster is None:
        raise CacheClusterNotFound(cluster_id)
    record("elasticache-reboot", cluster_id)
    return ActionResult({"CacheCluster": cluster})


def elasticache_test_failover(self: ElastiCacheResponse) -> ActionResult:
    group_id = self._get_param("ReplicationGroupId")
    group = self.elasticache_backend.replication_groups.get(group_id)
    if group is None:
        raise ReplicationGroupNotFound(group_id)
    if len(group.member_clusters) < 2 or group.automatic_failover != "enabled":
        raise InvalidReplicationGroupState(
            f"Replication group {group_id} has no replica with automatic failover enabled; "
            "TestFailover needs at least one read replica."
        )
    record("elasticache-failover", group_id, node_group=self._get_param("NodeGroupId"))
    return ActionResult({"ReplicationGroup": group})


def _target_key(target: dict[str, Any], default_port: Any) -> str:
    return f"{target['Id']}:{target.get('Port', default_port)}"


# moto's FakeTargetGroup keys targets by id alone (many tasks share 127.0.0.1 here) and reports them all
# healthy: these replace its register, deregister and health_for, keying targets by address and port with
# the health the ALB mirror observed, so `describe_target_health` tells the truth.


def register_targets(self: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
    for target in targets:
        key = _target_key(target, self.port)
        self.targets[key] = {"Id": target["Id"], "Port": target.get("Port", self.port)}
        self.deregistered_targets.pop(key, None)
        _target_health[(self.arn, key)] = (
            "initial",
            "Elb.RegistrationInProgress",
            "Target registration is in progress",
        )


def deregister_targets(self: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
    for target in targets:
        key = _target_key(target, self.port)
        removed = self.targets.pop(key, None)
        if removed is not None:
            self.deregistered_targets[key] = removed
        _target_health.pop((self.arn, key), None)


def observed_health(self: FakeTargetGroup, target: dict[str, Any], ec2_backend: Any) -> FakeHealthStatus:
    key = _target_key(target, self.port)
    port = target.get("Port", self.port)
    if key not in self.targets:
        return FakeHealthStatus(
            target["Id"],
            port,
            self.health_check_port,
            "unused",
            "Target.NotRegistered",
            "Target is not registered to the target group",
        )
    state, reason, description = _target_health.get((self.arn, key), ("healthy", None, None))
    return FakeHealthStatus(target["Id"], port, self.health_check_port, state, reason, description)


def set_target_health(target_group_arn: str, target_id: str, port: int, state: str, detail: str) -> None:
    """The ALB mirror's verdict on a target (healthy, unhealthy, initial, draining)."""
    reasons = {
        "initial": "Elb.RegistrationInProgress",
        "unhealthy": "Target.FailedHealthChecks",
        "draining": "Target.DeregistrationInProgress",
    }
    key = (target_group_arn, f"{target_id}:{port}")
    if key not in _target_health:
        raise KeyError(f"{target_id}:{port} is not registered in {target_group_arn}")
    _target_health[key] = (state, reasons.get(state), detail)


def recording_failover(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's FailoverDBCluster, then the fault recorded for the realizer."""

    def failover_db_cluster(self: RDSBackend, db_cluster_identifier: str, *args: Any, **kwargs: Any) -> Any:
        result = original(self, db_cluster_identifier, *args, **kwargs)
        record("rds-failover", db_cluster_identifier)
        return result

    return failover_db_cluster


def recording_reboot(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's RebootDBInstance, then the fault recorded for the realizer."""

    def reboot_db_instance(self: RDSBackend, db_instance_identifier: str) -> Any:
        result = original(self, db_instance_identifier)
        record("rds-reboot", db_instance_identifier)
        return result

    return reboot_db_instance


def _json(start_response: Callable[..., Any], status: str, body: Any) -> list[bytes]:
    payload = json.dumps(body, default=_default).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The /_devenv/ routes."""
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    parts = path[len(PREFIX) :].strip("/").split("/")
    if method == "GET" and parts == ["clock"]:
        clock = {"time_scale": time_scale.factor(), "metric_retention_s": metric_store.retention_s()}
        return _json(start_response, "200 OK", clock)
    if method == "GET" and parts == ["events"]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            after = int(query.get("after", ["0"])[0])
        except ValueError:
            return _json(start_response, "400 Bad Request", {"error": "after must be an integer"})
        return _json(start_response, "200 OK", {"events": events_after(after)})
    if method == "GET" and parts == ["ecs", "digest"]:
        return _json(start_response, "200 OK", {"digest": scheduler.digest()})
    if method == "POST" and parts == ["elbv2", "target-health"]:
        try:
            body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
            set_target_health(
                body["targetGroupArn"], body["id"], int(body["port"]), body["state"], body.get("detail", "")
            )
        except (ValueError, KeyError, TypeError) as exc:
            return _json(start_response, "400 Bad Request", {"error": f"bad target health report: {exc}"})
        return _json(start_response, "200 OK", {"ok": True})
    if method == "POST" and len(parts) == 4 and parts[:2] == ["ecs", "tasks"] and parts[3] == "target-event":
        return _target_event(environ, start_response, parts[2])
    if method == "POST" and len(parts) == 4 and parts[:2] == ["ecs", "tasks"] and parts[3] == "status":
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            last_status = body["lastStatus"]
        except (ValueError, KeyError):
            return _json(start_response, "400 Bad Request", {"error": 'body must be JSON with "lastStatus"'})
        if last_status not in ("RUNNING", "STOPPED"):
            return _json(
                start_response, "400 Bad Request", {"error": "lastStatus must be RUNNING or STOPPED"}
            )
        try:
            task = scheduler.report(
                parts[2],
                last_status,
                body.get("healthStatus"),
                body.get("stoppedReason"),
                body.get("exitCode"),
            )
        except KeyError:
            return _json(start_response, "404 Not Found", {"error": f"no task {parts[2]}"})
        return _json(start_response, "200 OK", {"taskArn": task.task_arn, "lastStatus": task.last_status})
    return _json(start_response, "404 Not Found", {"error": f"no route {method} {path}"})


def _target_event(environ: dict[str, Any], start_response: Callable[..., Any], task_id: str) -> list[bytes]:
    """`POST /_devenv/ecs/tasks/<id>/target-event`: what the ALB mirror did with a task's target
    ({"event": "registered" | "deregistered" | "unhealthy", "targetGroupArn", "port", "reason"?}),
    written to its service's events as ECS writes them."""
    try:
        body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
        event, target_group_arn, port = body["event"], str(body["targetGroupArn"]), int(body["port"])
        if event not in service_events.TARGET_EVENTS:
            raise ValueError(f"event must be one of {', '.join(service_events.TARGET_EVENTS)}")
    except (ValueError, KeyError, TypeError) as exc:
        return _json(start_response, "400 Bad Request", {"error": f"bad target event: {exc}"})
    try:
        scheduler.report_target_event(task_id, event, target_group_arn, port, body.get("reason"))
    except KeyError:
        return _json(start_response, "404 Not Found", {"error": f"no service task {task_id}"})
    return _json(start_response, "200 OK", {"ok": True})


def wrap(app: WSGIApp) -> WSGIApp:
    """The emulator's WSGI app with the /_devenv/ routes in front."""

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return handle(environ, start_response)
        return app(environ, start_response)

    return dispatch
