"""The synthesized LlmProxyStack: resource set, network rules, scaling, wiring, IAM, variants, cdk-nag."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from stack import names
from stack.app import CDK_JSON
from tests.stack.conftest import IMPORTED_VPC_ID, Synth, subnet_id

# What the local target deploys (stack/props/local.json): every resource type of the seed's design.
LOCAL_RESOURCE_COUNTS = {
    "AWS::ApplicationAutoScaling::ScalableTarget": 1,
    "AWS::ApplicationAutoScaling::ScalingPolicy": 2,
    "AWS::CloudWatch::Alarm": 7,
    "AWS::CloudWatch::Dashboard": 1,
    "AWS::EC2::EIP": 1,
    "AWS::EC2::InternetGateway": 1,
    "AWS::EC2::NatGateway": 1,
    "AWS::EC2::Route": 4,
    "AWS::EC2::RouteTable": 6,
    "AWS::EC2::SecurityGroup": 4,
    "AWS::EC2::SecurityGroupEgress": 3,
    "AWS::EC2::SecurityGroupIngress": 3,
    "AWS::EC2::Subnet": 6,
    "AWS::EC2::SubnetRouteTableAssociation": 6,
    "AWS::EC2::VPC": 1,
    "AWS::EC2::VPCGatewayAttachment": 1,
    "AWS::ECR::Repository": 1,
    "AWS::ECS::Cluster": 1,
    "AWS::ECS::Service": 2,
    "AWS::ECS::TaskDefinition": 2,
    "AWS::ElastiCache::ReplicationGroup": 1,
    "AWS::ElastiCache::SubnetGroup": 1,
    "AWS::ElasticLoadBalancingV2::Listener": 1,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": 1,
    "AWS::ElasticLoadBalancingV2::TargetGroup": 1,
    "AWS::IAM::Policy": 4,
    "AWS::IAM::Role": 4,
    "AWS::Logs::LogGroup": 2,
    "AWS::RDS::DBCluster": 1,
    "AWS::RDS::DBInstance": 1,
    "AWS::RDS::DBSubnetGroup": 1,
    "AWS::SSM::Parameter": 5,
    "AWS::SecretsManager::Secret": 5,
    "AWS::SecretsManager::SecretTargetAttachment": 1,
}
HTTPS_PROPS = {
    "imageTag": "v1",
    "domainName": "api.example.com",
    "hostedZoneId": "Z0123456789ABCDEFGHIJ",
    "hostedZoneName": "example.com",
}
IMPORTED_CERT = "arn:aws:acm:eu-central-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"
# Every optional feature at once (its cdk-nag run covers the conditional acknowledgments).
FULL_PROPS = {
    **HTTPS_PROPS,
    "enableXRay": True,
    "alarmEmail": "ops@example.com",
    "auroraReaders": 1,
    "redisNumNodes": 2,
    "enableDbCredentialRotation": True,
    "natGateways": 2,
    "createOpenAiApiKeySecret": True,
}


def refs(value: Any) -> set[str]:
    """Logical ids referenced (Ref / Fn::GetAtt) anywhere inside a template value."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and not value["Ref"].startswith("AWS::"):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        for item in value.values():
            found |= refs(item)
    elif isinstance(value, list):
        for item in value:
            found |= refs(item)
    return found


def logical_id(synth: Synth, resource_type: str, **properties: Any) -> str:
    matches = [
        key
        for key, resource in synth.of_type(resource_type).items()
        if all(resource["Properties"].get(name) == wanted for name, wanted in properties.items())
    ]
    assert len(matches) == 1, (resource_type, properties, matches)
    return matches[0]


def secret_id(synth: Synth, short: str) -> str:
    return logical_id(synth, "AWS::SecretsManager::Secret", Name=names.SECRETS[short])


def parameter_id(synth: Synth, short: str) -> str:
    return logical_id(synth, "AWS::SSM::Parameter", Name=names.PARAMETERS[short])


def task_definition(synth: Synth, command: list[str]) -> dict[str, Any]:
    for resource in synth.of_type("AWS::ECS::TaskDefinition").values():
        if resource["Properties"]["ContainerDefinitions"][0]["Command"] == command:
            return resource
    raise AssertionError(f"no task definition runs {command}")


def service_for(synth: Synth, command: list[str]) -> dict[str, Any]:
    wanted = next(
        key
        for key, resource in synth.of_type("AWS::ECS::TaskDefinition").items()
        if resource["Properties"]["ContainerDefinitions"][0]["Command"] == command
    )
    return next(
        resource
        for resource in synth.of_type("AWS::ECS::Service").values()
        if refs(resource["Properties"]["TaskDefinition"]) == {wanted}
    )


def security_group_rules(synth: Synth) -> set[tuple[str, str, str, int]]:
    """Every rule as (group, direction, peer, port); groups named by their role in the seed's table."""
    role_of = {
        key: resource["Properties"]["GroupDescription"].split(":")[0]
        for key, resource in synth.of_type("AWS::EC2::SecurityGroup").items()
    }
    short = {"LLM proxy ALB": "alb", "LLM proxy tasks": "ecs", "Aurora": "db", "ElastiCache Redis": "redis"}
    role_of = {key: short.get(role, role) for key, role in role_of.items()}

    def peer(rule: dict[str, Any], key: str) -> str:
        if "CidrIp" in rule:
            return rule["CidrIp"]
        return role_of[next(iter(refs(rule[key])))]

    rules = set()
    for key, resource in synth.of_type("AWS::EC2::SecurityGroup").items():
        for rule in resource["Properties"].get("SecurityGroupIngress", []):
            rules.add((role_of[key], "in", peer(rule, "SourceSecurityGroupId"), rule["FromPort"]))
        for rule in resource["Properties"].get("SecurityGroupEgress", []):
            if rule["CidrIp"] == "255.255.255.255/32":  # the CDK's "no egress" placeholder
                rules.add((role_of[key], "out", "none", 0))
                continue
            rules.add((role_of[key], "out", peer(rule, "DestinationSecurityGroupId"), rule["FromPort"]))
    for resource in synth.of_type("AWS::EC2::SecurityGroupIngress").values():
        props = resource["Properties"]
        group = role_of[next(iter(refs(props["GroupId"])))]
        rules.add((group, "in", peer(props, "SourceSecurityGroupId"), props["FromPort"]))
    for resource in synth.of_type("AWS::EC2::SecurityGroupEgress").values():
        props = resource["Properties"]
        group = role_of[next(iter(refs(props["GroupId"])))]
        rules.add((group, "out", peer(props, "DestinationSecurityGroupId"), props["FromPort"]))
    return rules


SEED_RULES = {
    ("alb", "out", "ecs", 8080),
    ("ecs", "in", "alb", 8080),
    ("ecs", "out", "db", 5432),
    ("ecs", "out", "redis", 6379),
    ("ecs", "out", "0.0.0.0/0", 443),
    ("db", "in", "ecs", 5432),
    ("db", "out", "none", 0),
    ("redis", "in", "ecs", 6379),
    ("redis", "out", "none", 0),
}


@pytest.mark.slow
def test_local_props_synthesize_every_resource_type(local_synth: Synth) -> None:
    counts = Counter(resource["Type"] for resource in local_synth.resources.values())
    assert dict(counts) == LOCAL_RESOURCE_COUNTS


def test_security_groups_match_the_seed_table_http_only(local_synth: Synth) -> None:
    assert security_group_rules(local_synth) == SEED_RULES | {("alb", "in", "0.0.0.0/0", 80)}


def test_security_groups_match_the_seed_table_https(synth_variant: Callable[..., Synth]) -> None:
    rules = security_group_rules(synth_variant(**HTTPS_PROPS))
    assert rules == SEED_RULES | {("alb", "in", "0.0.0.0/0", 443), ("alb", "in", "0.0.0.0/0", 80)}


def test_proxy_scaling_policies_and_cooldowns(local_synth: Synth) -> None:
    target = local_synth.one("AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    policies = {
        resource["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
            "PredefinedMetricType"
        ]: resource["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        for resource in local_synth.of_type("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }
    assert set(policies) == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    assert policies["ECSServiceAverageCPUUtilization"]["TargetValue"] == 70
    assert policies["ALBRequestCountPerTarget"]["TargetValue"] == 500
    for config in policies.values():
        assert (config["ScaleOutCooldown"], config["ScaleInCooldown"]) == (120, 600)


def test_services_circuit_breaker_and_desired_counts(local_synth: Synth) -> None:
    proxy = service_for(local_synth, ["proxy"])["Properties"]
    dispatcher = service_for(local_synth, ["dispatcher"])["Properties"]
    assert (proxy["DesiredCount"], dispatcher["DesiredCount"]) == (1, 1)
    assert proxy["LoadBalancers"][0]["ContainerPort"] == 8080 and not dispatcher.get("LoadBalancers")
    for service in (proxy, dispatcher):
        breaker = service["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
        assert breaker == {"Enable": True, "Rollback": True}
        assert service["LaunchType"] == "FARGATE"
        assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    assert (proxy["ServiceName"], dispatcher["ServiceName"]) == ("proxy", "dispatcher")


@pytest.mark.parametrize(
    ("command", "secrets", "parameters"),
    [
        (names.PROXY_COMMAND, names.PROXY_SECRETS, names.PROXY_PARAMETERS),
        (names.DISPATCHER_COMMAND, names.DISPATCHER_SECRETS, names.DISPATCHER_PARAMETERS),
    ],
)
def test_task_definition_env_and_secret_mapping(
    local_synth: Synth, command: list[str], secrets: dict[str, str], parameters: dict[str, str]
) -> None:
    definition = task_definition(local_synth, command)["Properties"]
    (container,) = definition["ContainerDefinitions"]
    wired = {entry["Name"]: refs(entry["ValueFrom"]) for entry in container["Secrets"]}
    expected = {env: {secret_id(local_synth, short)} for env, short in secrets.items()}
    expected |= {env: {parameter_id(local_synth, short)} for env, short in parameters.items()}
    assert wired == expected
    assert "Environment" not in container  # no plain env vars: everything from Secrets Manager / SSM
    assert definition["RuntimePlatform"] == {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}
    assert (definition["Cpu"], definition["Memory"]) == ("256", "512")
    assert container["Image"]["Fn::Join"][1][-1] == ":local"
    assert refs(container["Image"]) == {
        logical_id(local_synth, "AWS::ECR::Repository", RepositoryName="llm-proxy")
    }
    if command == names.PROXY_COMMAND:
        assert container["PortMappings"] == [{"ContainerPort": 8080, "Protocol": "tcp"}]


def test_ssm_parameter_values(local_synth: Synth) -> None:
    values = {
        resource["Properties"]["Name"]: resource["Properties"]["Value"]
        for resource in local_synth.of_type("AWS::SSM::Parameter").values()
    }
    assert values[names.PARAMETERS["upstream-url"]] == "http://127.0.0.1:8081"
    assert values[names.PARAMETERS["log-level"]] == "info"
    assert values[names.PARAMETERS["cache-enabled"]] == "true"
    assert values[names.PARAMETERS["rate-limit-rpm"]] == "0"
    redis_url = values[names.PARAMETERS["redis-url"]]["Fn::Join"][1]
    assert redis_url[0] == "rediss://"
    assert refs(redis_url) == {local_synth_replication_group(local_synth)}


def local_synth_replication_group(synth: Synth) -> str:
    (key,) = synth.of_type("AWS::ElastiCache::ReplicationGroup")
    return key


@pytest.mark.parametrize("command", [names.PROXY_COMMAND, names.DISPATCHER_COMMAND])
def test_roles_read_exactly_their_secrets_and_parameters(local_synth: Synth, command: list[str]) -> None:
    definition = task_definition(local_synth, command)["Properties"]
    secrets = {
        secret_id(local_synth, s)
        for s in (names.PROXY_SECRETS if command == ["proxy"] else names.DISPATCHER_SECRETS).values()
    }
    params = {
        parameter_id(local_synth, p)
        for p in (names.PROXY_PARAMETERS if command == ["proxy"] else names.DISPATCHER_PARAMETERS).values()
    }
    log_group = refs(definition["ContainerDefinitions"][0]["LogConfiguration"]["Options"]["awslogs-group"])

    def statements(role_key: str) -> list[dict[str, Any]]:
        role = next(iter(refs(definition[role_key])))
        policy = next(
            resource
            for resource in local_synth.of_type("AWS::IAM::Policy").values()
            if refs(resource["Properties"]["Roles"]) == {role}
        )
        return policy["Properties"]["PolicyDocument"]["Statement"]

    def resources_for(prefix: str, statement_list: list[dict[str, Any]]) -> set[str]:
        found: set[str] = set()
        for statement in statement_list:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(action.startswith(prefix) for action in actions):
                found |= refs(statement["Resource"])
        return found

    execution = statements("ExecutionRoleArn")
    task = statements("TaskRoleArn")
    assert resources_for("secretsmanager:", execution) == secrets
    assert resources_for("secretsmanager:", task) == set()
    assert resources_for("ssm:", task) == params
    assert resources_for("logs:", task) == log_group
    assert {action for s in task for action in s["Action"]} == {
        "ssm:DescribeParameters",
        "ssm:GetParameter",
        "ssm:GetParameterHistory",
        "ssm:GetParameters",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


def test_target_group_health_check(local_synth: Synth) -> None:
    group = local_synth.one("AWS::ElasticLoadBalancingV2::TargetGroup")["Properties"]
    assert group["Port"] == 8080 and group["TargetType"] == "ip"
    assert group["HealthCheckPath"] == "/health"
    assert group["HealthCheckIntervalSeconds"] == 10
    assert group["HealthyThresholdCount"] == 2
    attributes = {item["Key"]: item["Value"] for item in group["TargetGroupAttributes"]}
    assert attributes["deregistration_delay.timeout_seconds"] == "30"


def test_http_only_listener_without_domain(local_synth: Synth) -> None:
    listener = local_synth.one("AWS::ElasticLoadBalancingV2::Listener")["Properties"]
    assert (listener["Port"], listener["Protocol"]) == (80, "HTTP")
    assert listener["DefaultActions"][0]["Type"] == "forward"
    assert not local_synth.of_type("AWS::CertificateManager::Certificate")


def test_https_with_created_certificate_redirect_and_alias(synth_variant: Callable[..., Synth]) -> None:
    synth = synth_variant(**HTTPS_PROPS)
    listeners = {
        r["Properties"]["Port"]: r["Properties"]
        for r in synth.of_type("AWS::ElasticLoadBalancingV2::Listener").values()
    }
    assert listeners[443]["Protocol"] == "HTTPS"
    assert listeners[443]["DefaultActions"][0]["Type"] == "forward"
    redirect = listeners[80]["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS" and redirect["RedirectConfig"]["Port"] == "443"
    certificate = synth.one("AWS::CertificateManager::Certificate")["Properties"]
    assert certificate["DomainName"] == "api.example.com" and certificate["ValidationMethod"] == "DNS"
    assert certificate["DomainValidationOptions"][0]["HostedZoneId"] == HTTPS_PROPS["hostedZoneId"]
    record = synth.one("AWS::Route53::RecordSet")["Properties"]
    assert record["Name"] == "api.example.com." and record["Type"] == "A"
    assert synth.template["Outputs"]["AlbUrl"]["Value"] == "https://api.example.com"


def test_https_with_imported_certificate(synth_variant: Callable[..., Synth]) -> None:
    synth = synth_variant(imageTag="v1", existingCertificateArn=IMPORTED_CERT)
    assert not synth.of_type("AWS::CertificateManager::Certificate")
    https = next(
        r["Properties"]
        for r in synth.of_type("AWS::ElasticLoadBalancingV2::Listener").values()
        if r["Properties"]["Port"] == 443
    )
    assert https["Certificates"] == [{"CertificateArn": IMPORTED_CERT}]


@pytest.mark.usefixtures("imported_vpc_env")
def test_imported_vpc_creates_no_network(synth_variant: Callable[..., Synth]) -> None:
    synth = synth_variant(imageTag="v1", existingVpcId=IMPORTED_VPC_ID)
    for resource_type in (
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::NatGateway",
        "AWS::EC2::RouteTable",
    ):
        assert not synth.of_type(resource_type), resource_type
    for resource in synth.of_type("AWS::EC2::SecurityGroup").values():
        assert resource["Properties"]["VpcId"] == IMPORTED_VPC_ID
    subnet_group = synth.one("AWS::ElastiCache::SubnetGroup")["Properties"]
    assert subnet_group["SubnetIds"] == [subnet_id("c", 0), subnet_id("c", 1)]
    proxy = service_for(synth, ["proxy"])["Properties"]
    assert proxy["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] == [
        subnet_id("b", 0),
        subnet_id("b", 1),
    ]


def test_aurora_postgres_18_serverless_v2(local_synth: Synth) -> None:
    cluster = local_synth.one("AWS::RDS::DBCluster")["Properties"]
    assert cluster["Engine"] == "aurora-postgresql"
    assert cluster["EngineVersion"].split(".")[0] == "18"
    assert cluster["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 4}
    assert cluster["StorageEncrypted"] is True
    (instance,) = local_synth.of_type("AWS::RDS::DBInstance").values()
    assert instance["Properties"]["DBInstanceClass"] == "db.serverless"
    credentials = local_synth.resources[secret_id(local_synth, "database-credentials")]["Properties"]
    excluded = credentials["GenerateSecretString"]["ExcludeCharacters"]
    assert set(":/?#[]@!$&'()*+,;=%") <= set(excluded)


def test_database_url_is_composed_from_dynamic_references(local_synth: Synth) -> None:
    url_secret = local_synth.resources[secret_id(local_synth, "database-url")]["Properties"]
    rendered = json.dumps(url_secret["SecretString"])
    assert rendered.count("{{resolve:secretsmanager:") == 2
    assert ":SecretString:username::}}" in rendered and ":SecretString:password::}}" in rendered
    assert "postgresql://" in rendered and f"/{names.DATABASE_NAME}" in rendered


def test_generated_secrets_never_hold_a_value(local_synth: Synth) -> None:
    for short in ("management-token", "encryption-key", "admin-password", "database-credentials"):
        secret = local_synth.resources[secret_id(local_synth, short)]["Properties"]
        assert "GenerateSecretString" in secret and "SecretString" not in secret


def test_redis_replication_group_single_node_tls(local_synth: Synth) -> None:
    group = local_synth.one("AWS::ElastiCache::ReplicationGroup")["Properties"]
    assert group["TransitEncryptionEnabled"] is True and group["AtRestEncryptionEnabled"] is True
    assert group["CacheNodeType"] == "cache.t4g.micro"
    assert group["NumCacheClusters"] == 1 and group["AutomaticFailoverEnabled"] is False


def test_full_variant_optional_features(synth_variant: Callable[..., Synth]) -> None:
    synth = synth_variant(**FULL_PROPS)
    group = synth.one("AWS::ElastiCache::ReplicationGroup")["Properties"]
    assert group["NumCacheClusters"] == 2 and group["AutomaticFailoverEnabled"] is True
    assert len(synth.of_type("AWS::RDS::DBInstance")) == 2
    assert len(synth.of_type("AWS::EC2::NatGateway")) == 2
    assert synth.one("AWS::SNS::Subscription")["Properties"]["Endpoint"] == "ops@example.com"
    assert synth.of_type("AWS::SecretsManager::RotationSchedule")
    for command in (names.PROXY_COMMAND, names.DISPATCHER_COMMAND):
        containers = task_definition(synth, command)["Properties"]["ContainerDefinitions"]
        assert [c["Name"] for c in containers][1:] == ["xray-daemon"]
    proxy = task_definition(synth, names.PROXY_COMMAND)["Properties"]["ContainerDefinitions"][0]
    assert "OPENAI_API_KEY" in {entry["Name"] for entry in proxy["Secrets"]}
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    assert len(alarms) == 9  # one memory + one eviction alarm per Redis node
    assert all(alarm["Properties"]["AlarmActions"] for alarm in alarms.values())


def test_first_deploy_without_image_tag(synth_variant: Callable[..., Synth]) -> None:
    synth = synth_variant()
    for command in (names.PROXY_COMMAND, names.DISPATCHER_COMMAND):
        assert service_for(synth, command)["Properties"]["DesiredCount"] == 0
    assert synth.one("AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]["MinCapacity"] == 0
    next_step = json.dumps(synth.template["Outputs"]["NextStep"]["Value"])
    assert "desiredCount 0" in next_step and "docker buildx build" in next_step
    assert synth.template["Outputs"]["ImageTag"]["Value"] == "none"


def test_log_retention_and_alarms(local_synth: Synth) -> None:
    for group in local_synth.of_type("AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 14
    descriptions = " ".join(
        alarm["Properties"]["AlarmDescription"]
        for alarm in local_synth.of_type("AWS::CloudWatch::Alarm").values()
    )
    for topic in ("5xx", "unhealthy", "CPU", "Aurora above", "Aurora connections", "Redis memory", "evicted"):
        assert topic in descriptions


def test_stable_outputs(local_synth: Synth) -> None:
    assert set(names.OUTPUTS) <= set(local_synth.template["Outputs"])
    outputs = local_synth.template["Outputs"]
    assert refs(outputs["ManagementTokenSecretArn"]["Value"]) == {secret_id(local_synth, "management-token")}
    assert outputs["ClusterName"]["Value"] == {"Ref": next(iter(local_synth.of_type("AWS::ECS::Cluster")))}


def test_stack_is_asset_free(local_synth: Synth) -> None:
    assets = json.loads((local_synth.assembly / "LlmProxyStack.assets.json").read_text())
    assert assets.get("dockerImages", {}) == {}
    assert [entry["source"]["path"] for entry in assets["files"].values()] == ["LlmProxyStack.template.json"]
    assert (
        json.loads(CDK_JSON.read_text())["context"]["@aws-cdk/aws-ec2:restrictDefaultSecurityGroup"] is False
    )


@pytest.mark.parametrize("variant", ["local", "defaults", "full", "https-imported-cert"])
def test_cdk_nag_has_no_unacknowledged_finding(
    synth_variant: Callable[..., Synth], local_synth: Synth, variant: str
) -> None:
    synth = {
        "local": lambda: local_synth,
        "defaults": lambda: synth_variant(),
        "full": lambda: synth_variant(**FULL_PROPS),
        "https-imported-cert": lambda: synth_variant(imageTag="v1", existingCertificateArn=IMPORTED_CERT),
    }[variant]()
    reports = {report["pluginName"]: report for report in synth.validation_report["pluginReports"]}
    assert set(reports) == {"AwsSolutions", "CloudFormation Validate"}
    for report in reports.values():
        assert report["conclusion"] == "success" and report["violations"] == []
    acknowledged = reports["AwsSolutions"]["suppressedViolations"]
    assert acknowledged, "expected the seed's accepted findings to be acknowledged, not absent"
    for finding in acknowledged:
        assert len(finding.get("reason") or json.dumps(finding)) > 20


@pytest.mark.slow
def test_templates_pass_cfn_lint(synth_variant: Callable[..., Synth], local_synth: Synth) -> None:
    templates = [local_synth.assembly, synth_variant(**FULL_PROPS).assembly, synth_variant().assembly]
    paths = [str(assembly / "LlmProxyStack.template.json") for assembly in templates]
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())", *paths],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
