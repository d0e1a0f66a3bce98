"""An ECS Fargate service running the llmproxy image with one command (`proxy` or `dispatcher`).

The image's entrypoint is `python -m llmproxy`; the container's command picks the process. Secrets and
config reach the container as ECS `secrets` (valueFrom Secrets Manager / SSM), so the execution role
reads exactly the secrets and parameters listed here; the task role may read exactly its parameters
(the app can re-read them at run time) and write its own log group.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stack.config import StackProps

XRAY_DAEMON_IMAGE = "public.ecr.aws/xray/aws-xray-daemon:3.3.14"
# No image pushed yet: the services are created with desiredCount 0 and this tag is never pulled.
PLACEHOLDER_TAG = "latest"
RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


class AppService(Construct):
    """One Fargate service: task definition, log group, container wiring and the service itself."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: StackProps,
        name: str,
        command: list[str],
        cpu: int,
        memory_mib: int,
        desired_count: int,
        cluster: ecs.ICluster,
        repository: ecr.IRepository,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        secrets: Mapping[str, secretsmanager.ISecret],
        parameters: Mapping[str, ssm.IStringParameter],
        port: int | None = None,
        health_check_grace: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=RETENTION[props.log_retention_days])
        architecture = ecs.CpuArchitecture.ARM64 if props.use_arm64 else ecs.CpuArchitecture.X86_64
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=architecture, operating_system_family=ecs.OperatingSystemFamily.LINUX
            ),
        )
        container_secrets = {env: ecs.Secret.from_secrets_manager(secret) for env, secret in secrets.items()}
        container_secrets.update(
            {env: ecs.Secret.from_ssm_parameter(param) for env, param in parameters.items()}
        )
        environment = {"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000"} if props.enable_x_ray else None
        self.container = self.task_definition.add_container(
            name,
            image=ecs.ContainerImage.from_ecr_repository(repository, props.image_tag or PLACEHOLDER_TAG),
            command=command,
            port_mappings=[ecs.PortMapping(container_port=port)] if port else None,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=self.log_group),
            secrets=container_secrets,
            environment=environment,
            stop_timeout=Duration.seconds(30),
            essential=True,
        )
        task_role = self.task_definition.task_role
        for param in {id(p): p for p in parameters.values()}.values():
            param.grant_read(task_role)
        self.log_group.grant_write(task_role)
        if props.enable_x_ray:
            self._add_xray_daemon(name)

        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            service_name=name,
            task_definition=self.task_definition,
            desired_count=desired_count,
            vpc_subnets=subnets,
            security_groups=[security_group],
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
            health_check_grace_period=health_check_grace,
        )

    def _add_xray_daemon(self, name: str) -> None:
        self.task_definition.add_container(
            "xray-daemon",
            image=ecs.ContainerImage.from_registry(XRAY_DAEMON_IMAGE),
            cpu=32,
            memory_reservation_mib=64,
            essential=False,
            port_mappings=[ecs.PortMapping(container_port=2000, protocol=ecs.Protocol.UDP)],
            logging=ecs.LogDrivers.aws_logs(stream_prefix=f"{name}-xray", log_group=self.log_group),
        )
        self.task_definition.add_to_task_role_policy(
            iam.PolicyStatement(
                actions=[
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                ],
                resources=["*"],
            )
        )
