"""`devenv up` end to end: the CDK app deployed to the emulator and realized, driven through the AWS API.

One stack for the module (deploying it is the slow part); each test leaves it as it found it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import psutil
import pytest

from devenv.config import INSTANT_MOCK_UPSTREAM, environment
from devenv.runtime.ports import free_port, is_free
from tests.conftest import reachable_tmpdir

PORT_SETTINGS = (
    "postgres_port",
    "redis_port",
    "emulator_port",
    "mock_upstream_port",
    "alb_port",
    "alb_https_port",
    "aurora_port",
    "elasticache_port",
)


@dataclass
class Stack:
    env: dict[str, str]
    alb: str
    emulator: str
    token: str
    clients: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def devenv(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devenv", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(
                service,
                endpoint_url=self.emulator,
                region_name="us-east-1",
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )
        return self.clients[service]

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.devenv("status", "--output", "json").stdout))

    def chat(
        self, prompt: str = "hello", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str]]:
        body = json.dumps(
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}
        ).encode()
        request = urllib.request.Request(
            f"{self.alb}/v1/chat/completions",
            data=body,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers)
        except OSError:
            return 0, {}

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"{self.alb}/health", timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body or b"{}")
            except ValueError:  # the load balancer's own answer (no target registered) is HTML
                return exc.code, {"body": body.decode(errors="replace")}
        except OSError:
            return 0, {}

    def proxy_service(self) -> tuple[str, str]:
        ecs = self.client("ecs")
        cluster = ecs.list_clusters()["clusterArns"][0]
        return cluster, "proxy"

    def proxy_tasks(self) -> list[str]:
        cluster, service = self.proxy_service()
        return list(
            self.client("ecs").list_tasks(cluster=cluster, serviceName=service, desiredStatus="RUNNING")[
                "taskArns"
            ]
        )


def wait_for(predicate: Callable[[], Any], timeout_s: float = 60.0, interval_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError("condition not met in time")


@contextlib.contextmanager
def running_stack(settings_env: dict[str, str]) -> Iterator[Stack]:
    """`devenv up -d` on free ports in a throw-away state dir (plus `settings_env`, DEVENV_* variables),
    with a proxy token; `devenv down` afterwards."""
    state_dir = reachable_tmpdir("devenv-test-stack-")
    ports = {name: free_port() for name in PORT_SETTINGS}
    # the stack's local props point at the mock upstream on 8081; another port changes the template
    ports["mock_upstream_port"] = 8081 if is_free(8081) else ports["mock_upstream_port"]
    env = {
        **os.environ,
        "DEVENV_STATE_DIR": str(state_dir),
        "DEVENV_FAULT_HOLD_S": "2",
        "DEVENV_AUTOSCALING": "false",  # the tests set the desired counts themselves
        **environment(INSTANT_MOCK_UPSTREAM),  # traffic paced by the tests, not by a model's latency
        **{f"DEVENV_{name.upper()}": str(port) for name, port in ports.items()},
        **settings_env,
    }
    up = subprocess.run(
        [sys.executable, "-m", "devenv", "up", "-d"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        created = subprocess.run(
            [sys.executable, "-m", "devenv", "token", "create", "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        token = json.loads(created.stdout)["token"]
        yield Stack(
            env, f"http://127.0.0.1:{ports['alb_port']}", f"http://127.0.0.1:{ports['emulator_port']}", token
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "devenv", "down"], env=env, capture_output=True, timeout=180, check=False
        )
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack({}) as running:
        yield running


@pytest.fixture
def steady_traffic(stack: Stack) -> Iterator[list[int]]:
    """Light traffic through the ALB for the length of a test; yields the status codes seen."""
    codes: list[int] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            codes.append(stack.chat(f"steady {len(codes)}")[0])
            time.sleep(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield codes
    stop.set()
    thread.join()


def test_a_chat_completion_reaches_the_mock_upstream_through_the_alb_and_a_realized_task(
    stack: Stack,
) -> None:
    status, headers = stack.chat()
    assert status == 200
    assert headers.get("Via", "").endswith("Caddy")  # through the ALB mirror
    assert headers["X-Mock-Authorization"].startswith(
        "Bearer sk-devenv"
    )  # the proxy swapped in the project key
    doc = stack.status()
    names = {s["name"] for s in doc["services"]}
    assert {"alb", "aurora", "elasticache", "postgres", "redis", "emulator", "mock-upstream"} <= names
    ecs = {s["name"]: s for s in doc["ecs_services"]}
    assert ecs["proxy"]["desired"] == 1 and ecs["dispatcher"]["desired"] == 1
    status_code, health = stack.health()
    assert status_code == 200 and health["status"] == "ok"


def test_token_create_reuses_the_project_and_prints_exactly_the_documented_json(stack: Stack) -> None:
    first = stack.devenv("token", "create", "--project", "e2e", "--output", "json")
    second = stack.devenv("token", "create", "--project", "e2e", "--output", "json")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert set(one) == {"token", "token_id", "project_id", "expires_at"}
    assert one["project_id"] == two["project_id"] and one["token"] != two["token"]
    stack.notes["project_id"] = one["project_id"]
    assert one["token"].startswith("sk-") and len(one["token"]) == 25


def test_token_list_and_revoke_go_through_the_alb_mirror(stack: Stack) -> None:
    created = stack.devenv("token", "create", "--project", "e2e-revoke", "--output", "json")
    assert created.returncode == 0, created.stderr
    token_id = json.loads(created.stdout)["token_id"]

    def states() -> dict[str, str]:
        listed = stack.devenv("token", "list", "--project", "e2e-revoke", "--output", "json")
        assert listed.returncode == 0, listed.stderr
        return {token["id"]: token["state"] for token in json.loads(listed.stdout)["tokens"]}

    assert states() == {token_id: "active"}
    revoked = stack.devenv("token", "revoke", token_id)
    assert revoked.returncode == 0 and f"revoked token {token_id}" in revoked.stdout, revoked.stderr
    assert states() == {token_id: "revoked"}


def test_autoscaling_false_suspends_the_stacks_scalable_targets_as_an_aws_user_would(stack: Stack) -> None:
    targets = stack.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")
    assert [t["ResourceId"] for t in targets["ScalableTargets"]] == ["service/llm-proxy/proxy"]
    assert targets["ScalableTargets"][0]["SuspendedState"] == {
        "DynamicScalingInSuspended": True,
        "DynamicScalingOutSuspended": True,
        "ScheduledScalingSuspended": True,
    }
    policies = stack.client("application-autoscaling").describe_scaling_policies(ServiceNamespace="ecs")
    assert all(len(p["Alarms"]) == 2 for p in policies["ScalingPolicies"])  # there, but they scale nothing


def test_scaling_1_3_1_and_stop_task_is_routed_around(stack: Stack, steady_traffic: list[int]) -> None:
    ecs = stack.client("ecs")
    cluster, service = stack.proxy_service()
    ecs.update_service(cluster=cluster, service=service, desiredCount=3)
    wait_for(
        lambda: (
            len(stack.proxy_tasks()) == 3
            and ecs.describe_services(cluster=cluster, services=[service])["services"][0]["runningCount"] == 3
        )
    )
    elbv2 = stack.client("elbv2")
    group = elbv2.describe_target_groups()["TargetGroups"][0]["TargetGroupArn"]
    wait_for(lambda: len(elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]) == 3)

    victim = stack.proxy_tasks()[0]
    ecs.stop_task(cluster=cluster, task=victim, reason="e2e: stop one of three")
    wait_for(lambda: victim not in stack.proxy_tasks() and len(stack.proxy_tasks()) == 3)
    stopped = wait_for(
        lambda: [
            t
            for t in ecs.describe_tasks(cluster=cluster, tasks=[victim])["tasks"]
            if t["lastStatus"] == "STOPPED"
        ]
    )
    assert stopped[0]["stopCode"] == "UserInitiated"
    # as on AWS, a stopped task is listed only when asked for (desiredStatus defaults to RUNNING)
    assert victim not in ecs.list_tasks(cluster=cluster, serviceName=service)["taskArns"]
    assert victim in ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="STOPPED")["taskArns"]

    ecs.update_service(cluster=cluster, service=service, desiredCount=1)
    wait_for(lambda: len(stack.proxy_tasks()) == 1)
    wait_for(lambda: len(elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]) == 1)
    assert steady_traffic and all(code == 200 for code in steady_traffic), sorted(set(steady_traffic))


def proxy_events(stack: Stack) -> list[dict[str, Any]]:
    ecs = stack.client("ecs")
    cluster, service = stack.proxy_service()
    return list(ecs.describe_services(cluster=cluster, services=[service])["services"][0]["events"])


def test_a_forced_new_deployment_under_steady_traffic_fails_no_request_and_is_logged_as_ecs_logs_it(
    stack: Stack, steady_traffic: list[int]
) -> None:
    ecs = stack.client("ecs")
    cluster, service = stack.proxy_service()
    [before] = stack.proxy_tasks()
    steady = "(service proxy) has reached a steady state."
    # an earlier scale-in may still be draining a task: its events are not this deployment's
    wait_for(lambda: proxy_events(stack)[0]["message"] == steady, timeout_s=90)
    known = {e["id"] for e in proxy_events(stack)}
    ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
    [after] = wait_for(
        lambda: [t for t in stack.proxy_tasks() if t != before] if len(stack.proxy_tasks()) == 1 else None,
        timeout_s=120,
    )
    assert after != before
    time.sleep(1)
    assert len(steady_traffic) > 20
    assert all(code == 200 for code in steady_traffic), sorted(set(steady_traffic))

    # the deployment's service events, newest first, in AWS's words and order
    new = wait_for(
        lambda: (lambda e: e if e and e[0]["message"] == steady else None)(
            [e for e in proxy_events(stack) if e["id"] not in known]
        ),
        timeout_s=90,
    )
    deployment = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["deployments"][0]
    group = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["loadBalancers"][0][
        "targetGroupArn"
    ]
    assert [e["message"] for e in new] == [
        steady,
        f"(service proxy) (deployment {deployment['id']}) deployment completed.",
        "(service proxy) has begun draining connections on 1 tasks.",
        f"(service proxy) deregistered 1 targets in (target-group {group})",
        f"(service proxy) has stopped 1 running tasks: (task {before.rsplit('/', 1)[-1]}).",
        f"(service proxy) registered 1 targets in (target-group {group})",
        f"(service proxy) has started 1 tasks: (task {after.rsplit('/', 1)[-1]}).",
    ]
    assert deployment["rolloutState"] == "COMPLETED"

    # `devenv status` reads the same events through the ECS API: all in JSON, the newest few in text
    events = stack.status()["ecs_service_events"]
    assert [e["id"] for e in events["proxy"]] == [e["id"] for e in proxy_events(stack)]
    assert (
        events["dispatcher"]
        and events["dispatcher"][0]["message"] == "(service dispatcher) has reached a steady state."
    )
    text = stack.devenv("status")
    assert text.returncode == 0, text.stderr
    assert steady in text.stdout
    assert f"(task {after.rsplit('/', 1)[-1]})" not in text.stdout  # only the newest 3 of each service


def test_a_database_reboot_turns_health_503_then_back_to_200(stack: Stack) -> None:
    rds = stack.client("rds")
    [instance] = rds.describe_db_instances()["DBInstances"]
    rds.reboot_db_instance(DBInstanceIdentifier=instance["DBInstanceIdentifier"])
    # the task's own 503 (through the ALB's fail-open once its health check fails), naming the database
    _, body = wait_for(
        lambda: (lambda r: r if r[0] == 503 and r[1].get("status") == "down" else None)(stack.health()),
        timeout_s=30,
        interval_s=0.05,
    )
    assert body["status"] == "down" and body["checks"]["database"]["status"] != "ok"
    wait_for(lambda: stack.health()[0] == 200, timeout_s=60)
    assert stack.chat("after the database came back")[0] == 200


def test_a_redis_reboot_degrades_health_then_recovers(stack: Stack) -> None:
    cache = stack.client("elasticache")
    member = cache.describe_replication_groups()["ReplicationGroups"][0]["MemberClusters"][0]
    cache.reboot_cache_cluster(CacheClusterId=member, CacheNodeIdsToReboot=["0001"])
    status, body = wait_for(
        lambda: (lambda r: r if r[1].get("status") == "degraded" else None)(stack.health()),
        timeout_s=30,
        interval_s=0.05,
    )
    assert status == 200 and body["checks"]["redis"]["status"] != "ok"
    wait_for(lambda: stack.health()[1].get("status") == "ok", timeout_s=60)
    assert stack.chat("after the cache came back")[0] == 200


def test_down_leaves_nothing_running(stack: Stack) -> None:
    pids = [s["pid"] for s in stack.status()["services"] if s["pid"]]
    assert len(pids) >= 9
    done = stack.devenv("down", timeout=180)
    assert done.returncode == 0, done.stderr
    assert not [pid for pid in pids if psutil.pid_exists(pid)]


def test_a_second_up_on_the_same_state_keeps_the_data_and_its_secrets(stack: Stack) -> None:
    """The emulator forgets the stack when it stops; the data and the generated secrets must not."""
    up = stack.devenv("up", "-d", timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    again = stack.devenv("token", "create", "--project", "e2e", "--output", "json")
    assert again.returncode == 0, again.stderr
    token = json.loads(again.stdout)
    assert token["project_id"] == stack.notes["project_id"]  # the project made before `down` is still there
    stack.token = token["token"]
    assert stack.chat("after a second up")[0] == 200
