"""The whole local stack (`devenv up -d` on free ports in a throw-away state dir), driven through the AWS API,
the ALB mirror and the `devenv` command; tests/conftest.py shares one for the session (`stack`).

Starting a stack is the slow part of the end-to-end, metrics, load and failover tests, so they share one:
each test starts from `Stack.await_steady` and restores what it changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3

from devenv.config import INSTANT_MOCK_UPSTREAM, environment
from devenv.stack_names import STACK_NAME
from tests.conftest import reachable_tmpdir
from tests.ports import fixed_or_free, free_port
from tests.waiting import wait_for

PORT_SETTINGS = (
    "postgres_port",
    "redis_port",
    "emulator_port",
    "mock_upstream_port",
    "alb_port",
    "alb_https_port",
    "aurora_port",
    "elasticache_port",
    "dashboard_port",
)
UP_TIMEOUT_S = 240  # below pytest's global timeout (pyproject.toml), so a hung `up` fails with its output
STEADY_TIMEOUT_S = 120  # a replaced task: stop timeout, start, health checks, deregistration delay


def run_devenv(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m devenv ARGS` in `env`, its output captured (the tests read stdout, stderr and the code)."""
    return subprocess.run(
        [sys.executable, "-m", "devenv", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Stack:
    env: dict[str, str]
    alb: str
    emulator: str
    token: str
    up_output: str = ""  # what `devenv up -d` printed
    clients: dict[str, Any] = field(default_factory=dict)

    def devenv(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_devenv(self.env, *args, timeout=timeout)

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

    def is_steady(self) -> bool:
        """One running task per service and nothing else running, one healthy target, /health ok."""
        ecs = self.client("ecs")
        cluster, _ = self.proxy_service()
        for service in ecs.describe_services(cluster=cluster, services=["proxy", "dispatcher"])["services"]:
            running = ecs.list_tasks(cluster=cluster, serviceName=service["serviceName"])["taskArns"]
            if (service["desiredCount"], service["runningCount"], len(running)) != (1, 1, 1):
                return False
        elbv2 = self.client("elbv2")
        group = elbv2.describe_target_groups()["TargetGroups"][0]["TargetGroupArn"]
        targets = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
        if [t["TargetHealth"]["State"] for t in targets] != ["healthy"]:
            return False
        status, body = self.health()
        return status == 200 and body.get("status") == "ok"

    def await_steady(self) -> None:
        """The state every test of the shared stack starts from; a test that changed it restored it (or
        its rollback did), and this waits until that has taken effect."""
        try:
            wait_for(self.is_steady, timeout_s=STEADY_TIMEOUT_S, interval_s=0.2)
        except AssertionError:
            raise AssertionError(
                f"the shared stack did not return to its steady state in {STEADY_TIMEOUT_S} s: "
                f"a test before this one left it changed\n{self.devenv('status').stdout}"
            ) from None


@dataclass(frozen=True)
class Deployed:
    """What the emulator holds of the stack."""

    stack_id: str
    status: str
    events: dict[str, tuple[str, str]]  # event id -> (logical id, resource status)
    secrets: dict[str, str]


def deployed(stack: Stack) -> Deployed:
    cfn = stack.client("cloudformation")
    described = cfn.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    events = {
        e["EventId"]: (e["LogicalResourceId"], e["ResourceStatus"])
        for page in cfn.get_paginator("describe_stack_events").paginate(StackName=STACK_NAME)
        for e in page["StackEvents"]
    }
    sm = stack.client("secretsmanager")
    secrets = {
        s["Name"]: sm.get_secret_value(SecretId=s["ARN"])["SecretString"]
        for s in sm.list_secrets()["SecretList"]
    }
    return Deployed(described["StackId"], described["StackStatus"], events, secrets)


def props_mock_upstream_port() -> int:
    """8081, where the stack's local props point the mock upstream (another port changes the template and
    costs a synth), when this process may take it (tests/ports.py)."""
    return fixed_or_free(8081)


@contextlib.contextmanager
def running_stack(settings_env: dict[str, str]) -> Iterator[Stack]:
    """`devenv up -d` on free ports in a throw-away state dir (plus `settings_env`, DEVENV_* variables),
    with a proxy token; `devenv down` afterwards."""
    state_dir = reachable_tmpdir("devenv-test-stack-")
    ports = {name: free_port() for name in PORT_SETTINGS}
    ports["mock_upstream_port"] = props_mock_upstream_port()
    caller = {k: v for k, v in os.environ.items() if k not in ("MANAGEMENT_TOKEN", "DEVENV_TARGET_URL")}
    env = {
        **caller,
        "DEVENV_STATE_DIR": str(state_dir),
        "DEVENV_FAULT_HOLD_S": "2",
        "DEVENV_AUTOSCALING": "false",  # the tests set the desired counts themselves
        **environment(INSTANT_MOCK_UPSTREAM),  # traffic paced by the tests, not by a model's latency
        **{f"DEVENV_{name.upper()}": str(port) for name, port in ports.items()},
        **settings_env,
    }
    try:
        up = subprocess.run(
            [sys.executable, "-m", "devenv", "up", "-d"],
            env=env,
            capture_output=True,
            text=True,
            timeout=UP_TIMEOUT_S,
            check=False,
        )
        assert up.returncode == 0, up.stdout + up.stderr
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
            env,
            f"http://127.0.0.1:{ports['alb_port']}",
            f"http://127.0.0.1:{ports['emulator_port']}",
            token,
            up_output=up.stdout,
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "devenv", "down"], env=env, capture_output=True, timeout=180, check=False
        )
        shutil.rmtree(state_dir, ignore_errors=True)
