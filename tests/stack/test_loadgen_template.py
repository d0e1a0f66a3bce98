"""The synthesized LlmProxyLoadGenStack: Locust master and worker services in the proxy's VPC, no public
way to the master, its own log group, and a private, encrypted, TLS-only results bucket."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk import assertions

from stack import names
from tests.stack.conftest import Synth


def loadgen(synth: Synth) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(
        (synth.assembly / f"{names.LOADGEN_STACK_NAME}.template.json").read_text()
    )
    return template


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def services(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Properties"]["ServiceName"]: s for s in of_type(template, "AWS::ECS::Service").values()}


def container(template: dict[str, Any], service: dict[str, Any]) -> dict[str, Any]:
    definition = template["Resources"][service["Properties"]["TaskDefinition"]["Ref"]]
    [only] = definition["Properties"]["ContainerDefinitions"]
    return dict(only)


@pytest.mark.slow
def test_master_and_workers_run_the_loadtest_image_in_the_proxy_vpc(local_synth: Synth) -> None:
    template = loadgen(local_synth)
    found = services(template)
    assert set(found) == {names.LOADGEN_MASTER_SERVICE, names.LOADGEN_WORKER_SERVICE}
    master, worker = found[names.LOADGEN_MASTER_SERVICE], found[names.LOADGEN_WORKER_SERVICE]
    assert master["Properties"]["DesiredCount"] == 1
    assert worker["Properties"]["DesiredCount"] == 2  # the loadGenWorkers default
    for service in (master, worker):
        props = service["Properties"]
        assert props["LaunchType"] == "FARGATE"
        network = props["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
        # the proxy stack's private subnets, read from that stack's outputs
        assert all("LlmProxyStack" in json.dumps(subnet) for subnet in network["Subnets"])
        image = json.dumps(container(template, service)["Image"])
        assert next(iter(of_type(template, "AWS::ECR::Repository"))) in image  # the stack's repository
        assert ":local" in image  # stack/props/local.json's loadGenImageTag
    master_command = container(template, master)["Command"]
    worker_command = container(template, worker)["Command"]
    assert "--master" in master_command and str(names.LOCUST_MASTER_PORT) in master_command
    assert worker_command[worker_command.index("--master-host") + 1] == f"master.{names.LOADGEN_NAMESPACE}"
    assert master["Properties"]["EnableExecuteCommand"] is True  # SSM port forwarding for an operator
    [registry] = master["Properties"]["ServiceRegistries"]
    discovery = template["Resources"][registry["RegistryArn"]["Fn::GetAtt"][0]]
    assert discovery["Properties"]["Name"] == "master"
    [repository] = of_type(template, "AWS::ECR::Repository").values()
    assert repository["Properties"]["RepositoryName"] == names.LOADTEST_REPOSITORY_NAME
    # the target and its management token come from the proxy stack
    environment = {e["Name"]: e["Value"] for e in container(template, master)["Environment"]}
    assert "LlmProxyStack" in json.dumps(environment["LOCUST_HOST"])
    [secret] = container(template, worker)["Secrets"]
    assert secret["Name"] == "LOADTEST_MANAGEMENT_TOKEN" and "LlmProxyStack" in json.dumps(
        secret["ValueFrom"]
    )


def test_worker_count_is_a_prop_and_no_image_tag_means_no_tasks(synth_variant: Callable[..., Synth]) -> None:
    five = services(loadgen(synth_variant(imageTag="v1", loadGenImageTag="v1", loadGenWorkers=5)))
    assert five[names.LOADGEN_WORKER_SERVICE]["Properties"]["DesiredCount"] == 5
    idle = services(loadgen(synth_variant()))
    assert [s["Properties"]["DesiredCount"] for s in idle.values()] == [0, 0]


def test_no_public_way_to_the_master(local_synth: Synth) -> None:
    template = loadgen(local_synth)
    assertions.Template.from_json(template).resource_count_is("AWS::EC2::SecurityGroup", 2)
    text = json.dumps(template)
    groups = of_type(template, "AWS::EC2::SecurityGroup")
    master_id = next(k for k, g in groups.items() if "master" in g["Properties"]["GroupDescription"].lower())
    worker_id = next(k for k in groups if k != master_id)
    for group in groups.values():
        assert "SecurityGroupIngress" not in group["Properties"]  # only the one rule below
    [ingress] = of_type(template, "AWS::EC2::SecurityGroupIngress").values()
    rule = ingress["Properties"]
    assert rule["GroupId"] == {"Fn::GetAtt": [master_id, "GroupId"]}
    assert rule["SourceSecurityGroupId"] == {"Fn::GetAtt": [worker_id, "GroupId"]}
    assert (rule["FromPort"], rule["ToPort"]) == (names.LOCUST_MASTER_PORT, names.LOCUST_MASTER_PORT)
    assert "CidrIp" not in rule and "CidrIpv6" not in rule
    assert "::/0" not in text
    assert of_type(template, "AWS::ElasticLoadBalancingV2::LoadBalancer") == {}


def test_results_bucket_is_private_encrypted_and_tls_only(local_synth: Synth) -> None:
    template = loadgen(local_synth)
    checked = assertions.Template.from_json(template)
    checked.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    checked.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": assertions.Match.array_with(
                    [
                        assertions.Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )
    # only the master writes, and only PutObject under runs/
    writes = [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "s3:" in json.dumps(statement["Action"])
    ]
    assert [w["Action"] for w in writes] == ["s3:PutObject"]
    assert "/runs/*" in json.dumps(writes[0]["Resource"])
    assert set(template["Outputs"]) >= set(names.LOADGEN_OUTPUTS)


def test_both_services_log_to_the_stacks_own_group(local_synth: Synth) -> None:
    template = loadgen(local_synth)
    [group_id] = of_type(template, "AWS::Logs::LogGroup")
    for service in services(template).values():
        options = container(template, service)["LogConfiguration"]["Options"]
        assert options["awslogs-group"] == {"Ref": group_id}


def test_cdk_nag_acknowledgments_of_the_loadgen_stack_give_reasons(local_synth: Synth) -> None:
    [nag] = [r for r in local_synth.validation_report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []
    ours = [
        finding
        for finding in nag["suppressedViolations"]
        if any(
            names.LOADGEN_STACK_NAME in (c.get("constructPath") or "")
            for c in finding.get("violatingConstructs", [])
        )
    ]
    assert ours, nag["suppressedViolations"][:1]
    assert all(len(finding.get("reason") or "") > 20 for finding in ours)
