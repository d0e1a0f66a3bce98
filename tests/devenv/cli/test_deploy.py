"""`devenv deploy/destroy --target local` with the real CDK CLI against the real emulator.

One stack is deployed for the module (CDK runs are slow): the assertions read it back through the AWS
APIs and the local Postgres; an update puts the first deploy back; destroy takes a deployment of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from devenv.runtime.state import StateDir
from devenv.stack_names import STACK_NAME
from devenv.targets.local import client
from tests.conftest import postgres_and_redis, reachable_tmpdir
from tests.devenv.conftest import start_emulator, stop_emulator

REGION = "us-east-1"

pytestmark = pytest.mark.slow  # the real CDK CLI deploys the whole app


@dataclass
class Deployed:
    endpoint: str
    env: dict[str, str]
    first: dict[str, Any]
    first_stderr: str

    def template(self) -> dict[str, Any]:
        """The template of the first deploy's cloud assembly (the cache may be shared by the session)."""
        return dict(json.loads((Path(self.first["assembly"]) / "LlmProxyStack.template.json").read_text()))

    def devenv(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devenv", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            check=False,
        )

    def aws(self, service: str) -> Any:
        return client(service, self.endpoint, REGION)


@pytest.fixture(scope="module")
def deployed(postgres_dsn: str, redis_url: str) -> Iterator[Deployed]:
    with deployment(postgres_dsn, redis_url) as done:
        yield done


@pytest.fixture
def deployed_alone() -> Iterator[tuple[Deployed, str]]:
    """A deployment on an emulator, Postgres and Redis of its own, for a test that takes it away (the
    session's Postgres keeps the module deployment's roles); with its Postgres admin DSN."""
    root = reachable_tmpdir("devenv-test-deploy-infra-")
    try:
        with postgres_and_redis(StateDir(root)) as infra:
            dsn, url = (infra.services[name].spec.url for name in ("postgres", "redis"))
            assert dsn is not None and url is not None
            with deployment(dsn, url) as done:
                yield done, dsn
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def deployment(postgres_dsn: str, redis_url: str) -> Iterator[Deployed]:
    """The app deployed by `devenv deploy --target local` to a fresh emulator (stopped afterwards)."""
    if not (Path(__file__).resolve().parents[3] / "stack/node_modules/.bin/cdk").exists():
        pytest.fail("the pinned CDK CLI is missing: run `npm ci` in stack/")
    state_dir = reachable_tmpdir("devenv-test-deploy-")
    redis = urlsplit(redis_url)
    process, endpoint = start_emulator(
        {
            "DEVENV_POSTGRES_ADMIN_URL": postgres_dsn,
            "DEVENV_REDIS_ENDPOINT": f"{redis.hostname}:{redis.port}",
        },
        state_dir / "emulator.log",
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "DEVENV_STATE_DIR": str(state_dir),
        "DEVENV_EMULATOR_PORT": str(urlsplit(endpoint).port),
    }
    try:
        first = subprocess.run(
            [sys.executable, "-m", "devenv", "deploy", "--target", "local", "--output", "json"],
            capture_output=True,
            text=True,
            timeout=240,  # below pytest's global timeout (pyproject.toml), so a hung deploy shows its output
            env=env,
            check=False,
        )
        assert first.returncode == 0, first.stderr[-3000:]
        yield Deployed(endpoint, env, json.loads(first.stdout), first.stderr)
    finally:
        stop_emulator(process)
        shutil.rmtree(state_dir, ignore_errors=True)


def secret_json(deployed: Deployed, arn: str) -> dict[str, Any]:
    return dict(json.loads(deployed.aws("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]))


def test_the_cdk_cli_deploys_every_resource_and_the_outputs(deployed: Deployed) -> None:
    assert deployed.first["status"] == "CREATE_COMPLETE"
    template = deployed.template()
    assert deployed.first["resources"] == len(template["Resources"])
    outputs = deployed.first["outputs"]
    assert set(template["Outputs"]) <= set(outputs)
    assert "✓ bootstrap: CDKToolkit created" in deployed.first_stderr  # the steps, not the CLI's output
    assert "LlmProxyStack |" not in deployed.first_stderr
    resources = deployed.aws("cloudformation").list_stack_resources(StackName=STACK_NAME)[
        "StackResourceSummaries"
    ]
    assert {r["LogicalResourceId"] for r in resources} == set(template["Resources"])


def test_the_database_secret_logs_in_to_the_local_postgres(deployed: Deployed, postgres_dsn: str) -> None:
    secret = secret_json(deployed, deployed.first["outputs"]["DatabaseSecretArn"])
    admin = urlsplit(postgres_dsn)
    assert (secret["host"], int(secret["port"])) == (admin.hostname, admin.port)
    assert secret["engine"] == "postgres"
    cluster = deployed.aws("rds").describe_db_clusters()["DBClusters"][0]
    assert (cluster["Endpoint"], cluster["Port"]) == (admin.hostname, admin.port)
    assert cluster["Engine"] == "aurora-postgresql"
    assert cluster["ServerlessV2ScalingConfiguration"]["MaxCapacity"] == 4

    async def login() -> str:
        connection = await asyncpg.connect(
            host=secret["host"],
            port=int(secret["port"]),
            user=secret["username"],
            password=secret["password"],
            database=secret.get("dbname", "postgres"),
        )
        try:
            return str(await connection.fetchval("SELECT current_user"))
        finally:
            await connection.close()

    assert asyncio.run(login()) == secret["username"]


def test_the_apis_read_back_what_the_template_declared(deployed: Deployed, redis_url: str) -> None:
    redis = urlsplit(redis_url)
    group = deployed.aws("elasticache").describe_replication_groups()["ReplicationGroups"][0]
    primary = group["NodeGroups"][0]["PrimaryEndpoint"]
    assert (primary["Address"], primary["Port"]) == (redis.hostname, redis.port)
    assert deployed.aws("elasticache").describe_cache_clusters()["CacheClusters"]
    assert deployed.aws("cloudwatch").describe_alarms()["MetricAlarms"]
    scaling = deployed.aws("application-autoscaling")
    targets = scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert [t["MaxCapacity"] for t in targets] == [4]
    assert len(scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]) == 2
    ecs = deployed.aws("ecs")
    arns = ecs.list_task_definitions()["taskDefinitionArns"]
    definitions = [ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"] for arn in arns]
    proxy = next(
        d for d in definitions if any(c.get("command") == ["proxy"] for c in d["containerDefinitions"])
    )
    assert proxy["cpu"] == "256" and proxy["memory"] == "512"
    assert proxy["requiresCompatibilities"] == ["FARGATE"] and proxy["networkMode"] == "awsvpc"
    assert proxy["runtimePlatform"]["cpuArchitecture"] in ("ARM64", "X86_64")
    container = proxy["containerDefinitions"][0]
    assert container["secrets"] and all(s["valueFrom"].startswith("arn:aws:") for s in container["secrets"])
    template = deployed.template()
    declared = next(
        r["Properties"]["ContainerDefinitions"][0]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
        and r["Properties"]["ContainerDefinitions"][0]["Command"] == ["proxy"]
    )
    assert container["stopTimeout"] == declared["StopTimeout"]
    assert ("healthCheck" in container) == ("HealthCheck" in declared)
    cluster = deployed.first["outputs"]["ClusterName"]
    services = ecs.describe_services(
        cluster=cluster, services=ecs.list_services(cluster=cluster)["serviceArns"]
    )
    assert {s["launchType"] for s in services["services"]} == {"FARGATE"}
    assert any(s["loadBalancers"] for s in services["services"])


def tracking_alarms(deployed: Deployed) -> list[dict[str, Any]]:
    found = deployed.aws("cloudwatch").describe_alarms(AlarmNamePrefix="TargetTracking-")["MetricAlarms"]
    return list(found)


def test_the_stacks_scaling_policies_get_the_alarms_aws_creates(deployed: Deployed) -> None:
    policies = deployed.aws("application-autoscaling").describe_scaling_policies(ServiceNamespace="ecs")
    by_metric = {
        p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
            "PredefinedMetricType"
        ]: p
        for p in policies["ScalingPolicies"]
    }
    assert set(by_metric) == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    alarms = {a["AlarmName"]: a for a in tracking_alarms(deployed)}
    resource = by_metric["ECSServiceAverageCPUUtilization"]["ResourceId"]
    cluster, service = resource.split("/")[1:]
    for kind, (metric, dimensions, target) in {
        "ECSServiceAverageCPUUtilization": (
            "CPUUtilization",
            [{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": service}],
            70.0,  # cpuTargetPercent
        ),
        "ALBRequestCountPerTarget": ("RequestCountPerTarget", None, 500.0),  # requestsPerTarget
    }.items():
        high, low = (alarms[a["AlarmName"]] for a in by_metric[kind]["Alarms"])
        assert high["AlarmName"].startswith(f"TargetTracking-{resource}-AlarmHigh-")
        assert (high["MetricName"], high["Threshold"], high["EvaluationPeriods"]) == (metric, target, 3)
        assert (low["MetricName"], low["Threshold"], low["EvaluationPeriods"]) == (metric, target * 0.9, 15)
        if dimensions:
            assert high["Dimensions"] == dimensions
        else:
            [dimension] = high["Dimensions"]
            group = deployed.aws("elbv2").describe_target_groups()["TargetGroups"][0]["TargetGroupArn"]
            assert dimension == {"Name": "TargetGroup", "Value": group.split(":")[-1]}
    template_alarms = [
        r for r in deployed.template()["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    total = deployed.aws("cloudwatch").describe_alarms()["MetricAlarms"]
    assert len(total) == len(template_alarms) + 4


def test_parity_finds_no_unsupported_resource_in_the_real_stack(deployed: Deployed) -> None:
    done = deployed.devenv("parity", "--output", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)
    assert document["unsupported"] == 0
    assert len(document["resources"]) == deployed.first["resources"]
    fates = {r["type"]: r["fate"] for r in document["resources"]}
    assert fates["AWS::EC2::VPC"] == "recorded" and fates["AWS::RDS::DBCluster"] in ("emulated", "realized")


def test_an_unchanged_app_is_not_synthesized_again_and_an_update_applies_in_place(deployed: Deployed) -> None:
    again = deployed.devenv("deploy", "--target", "local", "--output", "json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "✓ synth: cached (" in again.stderr
    # the emulator holds this very assembly: nothing deployed, said at once
    assert json.loads(again.stdout)["unchanged"] is True
    assert f"✓ deploy: unchanged: the local cloud holds {STACK_NAME} of template" in again.stderr
    assert "cdk deploy" not in again.stderr
    cluster_before = deployed.aws("rds").describe_db_clusters()["DBClusters"][0]["DBClusterIdentifier"]
    update = deployed.devenv(
        "deploy",
        "--target",
        "local",
        "--output",
        "json",
        "-c",
        "proxyMaxTasks=6",
        "-c",
        "logLevel=warn",
        "-c",
        "auroraMaxCapacity=8",
    )
    try:
        assert update.returncode == 0, update.stderr[-3000:]
        assert json.loads(update.stdout)["status"] == "UPDATE_COMPLETE"
        targets = deployed.aws("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")
        assert [t["MaxCapacity"] for t in targets["ScalableTargets"]] == [6]
        cluster = deployed.aws("rds").describe_db_clusters()["DBClusters"][0]
        assert cluster["DBClusterIdentifier"] == cluster_before
        assert cluster["ServerlessV2ScalingConfiguration"]["MaxCapacity"] == 8
        parameter = deployed.aws("ssm").get_parameter(Name="/llm-proxy/log-level")["Parameter"]
        assert parameter["Value"] == "warn"
        assert len(tracking_alarms(deployed)) == 4  # the updated policies' alarms replaced, none left behind
    finally:  # the module's other tests read back the first deploy
        restored = deployed.devenv("deploy", "--target", "local", "--output", "json")
        assert restored.returncode == 0, restored.stderr[-3000:]


def test_destroy_leaves_nothing(deployed_alone: tuple[Deployed, str]) -> None:
    deployed, postgres_dsn = deployed_alone
    secret = secret_json(deployed, deployed.first["outputs"]["DatabaseSecretArn"])
    done = deployed.devenv("destroy", "--target", "local", "--output", "json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["leaked"] == []
    assert deployed.aws("rds").describe_db_clusters()["DBClusters"] == []
    assert deployed.aws("elasticache").describe_replication_groups()["ReplicationGroups"] == []
    ecs = deployed.aws("ecs")
    clusters = ecs.describe_clusters(clusters=ecs.list_clusters()["clusterArns"])["clusters"]
    assert all(cluster["status"] == "INACTIVE" for cluster in clusters)
    vpcs = deployed.aws("ec2").describe_vpcs()["Vpcs"]
    assert all(v["IsDefault"] for v in vpcs)
    assert deployed.aws("cloudwatch").describe_alarms()["MetricAlarms"] == []  # target tracking's went too

    async def role_exists() -> bool:
        connection = await asyncpg.connect(postgres_dsn)
        try:
            return bool(
                await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", secret["username"])
            )
        finally:
            await connection.close()

    assert not asyncio.run(role_exists())
