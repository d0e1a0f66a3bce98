"""The emulator process: strict mode, failures as events and rollbacks, dynamic references, the models.

Small hand-written templates through boto3 CreateStack; the real stack is deployed in tests/devenv/cli.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devenv.targets.local import DeployFailedError, client, delete_stack, deploy_template
from tests.devenv.conftest import start_emulator, stop_emulator

REGION = "us-east-1"


def aws(emulator: str, service: str) -> Any:
    return client(service, emulator, REGION)


def write(tmp_path: Path, resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "template.json"
    path.write_text(json.dumps({"Resources": resources, "Outputs": outputs or {}}))
    return path


def events(emulator: str, stack: str) -> list[dict[str, Any]]:
    return list(aws(emulator, "cloudformation").describe_stack_events(StackName=stack)["StackEvents"])


def test_strict_mode_rejects_an_unknown_type_naming_it_and_its_logical_id(emulator: str) -> None:
    template = {"Resources": {"Thing": {"Type": "AWS::Made::Up", "Properties": {}}}}
    with pytest.raises(ClientError) as caught:
        aws(emulator, "cloudformation").create_stack(StackName="strict", TemplateBody=json.dumps(template))
    message = caught.value.response["Error"]["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "AWS::Made::Up" in message and "Thing" in message


def test_a_failing_resource_is_a_create_failed_event_and_a_rollback(emulator: str, tmp_path: Path) -> None:
    resources = {
        "Kept": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Type": "String", "Value": "x", "Name": "/rb/kept"},
        },
        "Broken": {
            "Type": "AWS::RDS::DBCluster",
            "DependsOn": "Kept",
            "Properties": {"Engine": "mysql", "MasterUsername": "u", "MasterUserPassword": "password1"},
        },
    }
    with pytest.raises(DeployFailedError) as caught:
        deploy_template(emulator, write(tmp_path, resources), "rollback")
    assert "ROLLBACK_COMPLETE" in caught.value.message and "mysql" in caught.value.message
    failed = [e for e in events(emulator, "rollback") if e["ResourceStatus"] == "CREATE_FAILED"]
    assert any(e["LogicalResourceId"] == "Broken" for e in failed)
    with pytest.raises(ClientError):  # rolled back: the resource created before the failure is gone
        aws(emulator, "ssm").get_parameter(Name="/rb/kept")


def test_an_attribute_no_model_implements_is_an_error_not_a_dropped_property(
    emulator: str, tmp_path: Path
) -> None:
    resources = {
        "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {"SecretString": "s"}},
        "Param": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Type": "String", "Value": {"Fn::GetAtt": ["Secret", "NoSuchAttribute"]}},
        },
    }
    with pytest.raises(DeployFailedError) as caught:
        deploy_template(emulator, write(tmp_path, resources), "badattr")
    assert "NoSuchAttribute" in caught.value.message


def test_generated_secrets_and_dynamic_references(emulator: str, tmp_path: Path) -> None:
    resources = {
        "Credentials": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Name": "dyn/credentials",
                "GenerateSecretString": {
                    "SecretStringTemplate": '{"username":"app"}',
                    "GenerateStringKey": "password",
                    "PasswordLength": 24,
                    "ExcludePunctuation": True,
                },
            },
        },
        "Level": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Type": "String", "Value": "debug", "Name": "/dyn/level"},
        },
        "Url": {
            "Type": "AWS::SSM::Parameter",
            "DependsOn": ["Level"],
            "Properties": {
                "Type": "String",
                "Name": "/dyn/url",
                "Value": {
                    "Fn::Join": [
                        "",
                        [
                            "postgresql://{{resolve:secretsmanager:",
                            {"Ref": "Credentials"},
                            ":SecretString:username::}}:{{resolve:secretsmanager:",
                            {"Ref": "Credentials"},
                            ":SecretString:password::}}@db/{{resolve:ssm:/dyn/level}}",
                        ],
                    ]
                },
            },
        },
    }
    outputs = {"SecretArn": {"Value": {"Ref": "Credentials"}}}
    result = deploy_template(emulator, write(tmp_path, resources, outputs), "dynamic")
    secret = json.loads(
        aws(emulator, "secretsmanager").get_secret_value(SecretId=result["SecretArn"])["SecretString"]
    )
    assert secret["username"] == "app" and len(secret["password"]) == 24 and secret["password"].isalnum()
    url = aws(emulator, "ssm").get_parameter(Name="/dyn/url")["Parameter"]["Value"]
    assert url == f"postgresql://app:{secret['password']}@db/debug"
    delete_stack(emulator, "dynamic")


def test_a_change_set_stack_has_outputs_and_task_definitions_keep_their_fields(emulator: str) -> None:
    container = {
        "Name": "web",
        "Image": "nginx",
        "Essential": True,
        "StopTimeout": 30,
        "HealthCheck": {"Command": ["CMD-SHELL", "true"], "Interval": 10},
        "Secrets": [{"Name": "TOKEN", "ValueFrom": {"Ref": "Token"}}],
    }
    template = {
        "Resources": {
            "Token": {"Type": "AWS::SecretsManager::Secret", "Properties": {"SecretString": "t"}},
            "Task": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "Cpu": "256",
                    "Memory": "512",
                    "NetworkMode": "awsvpc",
                    "RequiresCompatibilities": ["FARGATE"],
                    "RuntimePlatform": {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"},
                    "ContainerDefinitions": [container],
                },
            },
        },
        "Outputs": {"TaskArn": {"Value": {"Ref": "Task"}}},
    }
    cfn = aws(emulator, "cloudformation")
    cfn.create_change_set(
        StackName="changeset",
        ChangeSetName="first",
        ChangeSetType="CREATE",
        TemplateBody=json.dumps(template),
    )
    cfn.execute_change_set(ChangeSetName="first", StackName="changeset")
    stack = cfn.describe_stacks(StackName="changeset")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    arn = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["TaskArn"]
    definition = aws(emulator, "ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert (definition["cpu"], definition["memory"], definition["networkMode"]) == ("256", "512", "awsvpc")
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert definition["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}
    web = definition["containerDefinitions"][0]
    assert web["stopTimeout"] == 30 and web["healthCheck"]["command"] == ["CMD-SHELL", "true"]
    assert web["secrets"][0]["valueFrom"].startswith("arn:aws:secretsmanager:")
    delete_stack(emulator, "changeset")


@pytest.mark.slow
def test_a_db_cluster_without_a_local_postgres_fails_clearly(tmp_path: Path) -> None:
    process, endpoint = start_emulator({"DEVENV_POSTGRES_ADMIN_URL": ""}, tmp_path / "emulator.log")
    try:
        resources = {
            "Db": {
                "Type": "AWS::RDS::DBCluster",
                "Properties": {
                    "Engine": "aurora-postgresql",
                    "MasterUsername": "app",
                    "MasterUserPassword": "password1",
                },
            }
        }
        with pytest.raises(DeployFailedError) as caught:
            deploy_template(endpoint, write(tmp_path, resources), "nopg")
        assert "DEVENV_POSTGRES_ADMIN_URL" in caught.value.message
    finally:
        assert stop_emulator(process) == 0  # SIGTERM: a clean exit


def test_an_update_reaches_the_resources_that_reference_a_replaced_one(emulator: str, tmp_path: Path) -> None:
    def template(image: str) -> dict[str, Any]:
        return {
            "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": "upd"}},
            "Task": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "Family": "upd",
                    "Cpu": "256",
                    "Memory": "512",
                    "NetworkMode": "awsvpc",
                    "RequiresCompatibilities": ["FARGATE"],
                    "ContainerDefinitions": [{"Name": "web", "Image": image, "Essential": True}],
                },
            },
            "Service": {
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "Cluster": {"Ref": "Cluster"},
                    "TaskDefinition": {"Ref": "Task"},
                    "DesiredCount": 1,
                },
            },
        }

    outputs = {"Task": {"Value": {"Ref": "Task"}}, "Service": {"Value": {"Ref": "Service"}}}
    first = deploy_template(emulator, write(tmp_path, template("web:1"), outputs), "update")
    second = deploy_template(emulator, write(tmp_path, template("web:2"), outputs), "update")
    assert second["Task"] != first["Task"]
    ecs = aws(emulator, "ecs")
    [service] = ecs.describe_services(cluster="upd", services=[second["Service"]])["services"]
    assert service["taskDefinition"] == second["Task"]
    assert (
        ecs.describe_task_definition(taskDefinition=first["Task"])["taskDefinition"]["status"] == "INACTIVE"
    )
    assert (
        ecs.describe_task_definition(taskDefinition=second["Task"])["taskDefinition"]["containerDefinitions"][
            0
        ]["image"]
        == "web:2"
    )
    delete_stack(emulator, "update")
