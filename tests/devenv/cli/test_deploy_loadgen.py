"""`devenv deploy --stack loadgen --target local`: the load generator's stack on the real emulator, beside
the proxy stack it reads its VPC, target and token from (the CDK's cross-stack outputs)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from devenv import stack_names as names
from tests.devenv.cli.test_deploy import Deployed, deployment

pytestmark = pytest.mark.slow  # the real CDK CLI deploys the whole app, then the load generator


@pytest.fixture(scope="module")
def proxy_deployed(postgres_dsn: str, redis_url: str) -> Iterator[Deployed]:
    with deployment(postgres_dsn, redis_url) as done:
        yield done


def test_the_loadgen_stack_deploys_beside_the_proxy_stack(proxy_deployed: Deployed) -> None:
    result = proxy_deployed.devenv("deploy", "--stack", "loadgen", "--target", "local", "--output", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["stack"] == names.LOADGEN_STACK_NAME and report["status"] == "CREATE_COMPLETE"
    outputs = report["outputs"]
    assert set(names.LOADGEN_OUTPUTS) <= set(outputs)
    # the proxy stack's URL came across through Fn::GetStackOutput
    assert outputs["LoadGenTargetUrl"] == proxy_deployed.first["outputs"]["AlbUrl"]
    ecs = proxy_deployed.aws("ecs")
    cluster = outputs["LoadGenClusterName"]
    services = ecs.describe_services(
        cluster=cluster, services=[names.LOADGEN_MASTER_SERVICE, names.LOADGEN_WORKER_SERVICE]
    )["services"]
    assert {s["serviceName"]: s["desiredCount"] for s in services} == {
        names.LOADGEN_MASTER_SERVICE: 1,
        names.LOADGEN_WORKER_SERVICE: 2,
    }
    master = ecs.describe_task_definition(taskDefinition=services[0]["taskDefinition"])["taskDefinition"]
    [container] = master["containerDefinitions"]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["LOCUST_HOST"] == outputs["LoadGenTargetUrl"]
    assert environment["LOADTEST_RESULTS_BUCKET"] == outputs["LoadGenResultsBucket"]
    s3 = proxy_deployed.aws("s3")
    blocked = s3.get_public_access_block(Bucket=outputs["LoadGenResultsBucket"])
    assert all(blocked["PublicAccessBlockConfiguration"].values())
    namespaces = proxy_deployed.aws("servicediscovery").list_namespaces()["Namespaces"]
    assert names.LOADGEN_NAMESPACE in [n["Name"] for n in namespaces]
    # the proxy stack stayed as it was: deployed once, never updated by the load generator's deploy
    stack = proxy_deployed.aws("cloudformation").describe_stacks(StackName=names.STACK_NAME)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"


def test_an_unchanged_stack_is_told_apart_from_the_app_s_other_stack(proxy_deployed: Deployed) -> None:
    """Both stacks come from one cloud assembly: "unchanged" is decided per stack, by its own template."""
    # deployed (or already, by the module's other test): the proxy stack's record must not answer for it
    first = proxy_deployed.devenv("deploy", "--stack", "loadgen", "--target", "local", "--output", "json")
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads(first.stdout)["stack"] == names.LOADGEN_STACK_NAME
    for option, stack in ((["--stack", "loadgen"], names.LOADGEN_STACK_NAME), ([], names.STACK_NAME)):
        again = proxy_deployed.devenv("deploy", *option, "--target", "local", "--output", "json")
        assert again.returncode == 0, again.stderr[-3000:]
        report = json.loads(again.stdout)
        assert (report["stack"], report["unchanged"]) == (stack, True)
        assert f"unchanged: the local cloud holds {stack} of template" in again.stderr
        assert "cdk deploy" not in again.stderr


def test_parity_models_every_resource_of_the_loadgen_stack(proxy_deployed: Deployed) -> None:
    result = proxy_deployed.devenv("parity", "--stack", "loadgen", "--output", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(result.stdout)
    assert document["unsupported"] == 0
    fates = {r["type"]: r["fate"] for r in document["resources"]}
    assert fates["AWS::ECS::Service"] == "realized"
    assert fates["AWS::S3::Bucket"] == "emulated"
    assert fates["AWS::ServiceDiscovery::PrivateDnsNamespace"] == "emulated"
    assert fates["AWS::ServiceDiscovery::Service"] == "emulated"


def test_destroy_of_the_loadgen_stack_leaves_the_proxy_stack(proxy_deployed: Deployed) -> None:
    deployed = proxy_deployed.devenv("deploy", "--stack", "loadgen", "--target", "local", "--output", "json")
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    result = proxy_deployed.devenv("destroy", "--stack", "loadgen", "--target", "local", "--output", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert (report["stack"], report["deleted"], report["leaked"]) == (names.LOADGEN_STACK_NAME, True, [])
    cloudformation = proxy_deployed.aws("cloudformation")
    stacks = cloudformation.list_stacks()["StackSummaries"]
    live = {s["StackName"] for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"}
    assert names.STACK_NAME in live and names.LOADGEN_STACK_NAME not in live
    again = proxy_deployed.devenv("destroy", "--stack", "loadgen", "--target", "local")
    assert again.returncode == 0 and f"{names.LOADGEN_STACK_NAME} did not exist" in again.stdout
    # its image repository is kept (RemovalPolicy.RETAIN), as on AWS, where a new deploy of the stack
    # would fail on the name: removed by hand, as a user would, so that the module's other tests deploy
    ecr = proxy_deployed.aws("ecr")
    ecr.delete_repository(repositoryName=names.LOADTEST_REPOSITORY_NAME, force=True)
