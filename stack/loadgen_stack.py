"""LoadGenStack: Locust in the proxy's VPC, one master service and a worker service of N Fargate tasks.

Deployed only when asked (`devenv deploy --stack loadgen`): load from inside the VPC measures the stack,
not a laptop's uplink. Both services run the loadtest image (dockerfiles/loadtest.Dockerfile) from the
stack's own ECR repository. Workers find the master through Cloud Map (`master.loadgen.local`). Nothing
else reaches the master: its worker port admits the workers' security group only, and its web UI has no
ingress rule at all (an operator reaches it by SSM port forwarding through ECS Exec, never the internet).
Runs write their results (summary, timeline, CSVs, Locust's HTML) to the stack's S3 bucket.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stack import names
from stack.config import StackProps
from stack.constructs.repository import image_repository
from stack.constructs.service import PLACEHOLDER_TAG, RETENTION

LOCUSTFILES = "/app/loadtests/locustfile.py,/app/loadtests/shapes.py"
MASTER_CPU, MASTER_MEMORY_MIB = 512, 1024


class LoadGenStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: StackProps,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        target_url: str,
        management_token: secretsmanager.ISecret,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Locust load generator for the LLM Proxy (devenv stack/)",
            **kwargs,
        )
        deployable = props.load_gen_image_tag is not None
        self.bucket = s3.Bucket(
            self,
            "Results",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=False,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=RETENTION[props.log_retention_days])
        repository = image_repository(self, "Repository", names.LOADTEST_REPOSITORY_NAME)
        cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            cluster_name=names.LOADGEN_NAME,
            container_insights_v2=ecs.ContainerInsights.DISABLED,
        )
        namespace = cluster.add_default_cloud_map_namespace(name=names.LOADGEN_NAMESPACE, vpc=vpc)

        master_group = ec2.SecurityGroup(
            self,
            "MasterSecurityGroup",
            vpc=vpc,
            description="Locust master: its worker port from the workers only",
        )
        worker_group = ec2.SecurityGroup(
            self, "WorkerSecurityGroup", vpc=vpc, description="Locust workers: no ingress"
        )
        master_group.add_ingress_rule(
            worker_group, ec2.Port.tcp(names.LOCUST_MASTER_PORT), "workers report to the master"
        )

        image = ecs.ContainerImage.from_ecr_repository(
            repository, props.load_gen_image_tag or PLACEHOLDER_TAG
        )
        environment = {"LOCUST_HOST": target_url, "LOADTEST_RESULTS_BUCKET": self.bucket.bucket_name}
        secrets = {"LOADTEST_MANAGEMENT_TOKEN": ecs.Secret.from_secrets_manager(management_token)}
        master = self._task_definition(
            "Master",
            props,
            MASTER_CPU,
            MASTER_MEMORY_MIB,
            image,
            command=[
                "-f",
                LOCUSTFILES,
                "--master",
                "--master-bind-port",
                str(names.LOCUST_MASTER_PORT),
                "--web-port",
                str(names.LOCUST_WEB_PORT),
            ],
            ports=(names.LOCUST_WEB_PORT, names.LOCUST_MASTER_PORT),
            environment=environment,
            secrets=secrets,
            stream_prefix="master",
        )
        master.add_to_task_role_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[self.bucket.arn_for_objects("runs/*")])
        )
        worker = self._task_definition(
            "Worker",
            props,
            props.load_gen_worker_cpu,
            props.load_gen_worker_memory_mib,
            image,
            command=[
                "-f",
                LOCUSTFILES,
                "--worker",
                "--master-host",
                f"master.{names.LOADGEN_NAMESPACE}",
                "--master-port",
                str(names.LOCUST_MASTER_PORT),
            ],
            ports=(),
            environment=environment,
            secrets=secrets,
            stream_prefix="worker",
        )
        self.master = ecs.FargateService(
            self,
            "MasterService",
            cluster=cluster,
            service_name=names.LOADGEN_MASTER_SERVICE,
            task_definition=master,
            desired_count=1 if deployable else 0,
            vpc_subnets=subnets,
            security_groups=[master_group],
            assign_public_ip=False,
            enable_execute_command=True,  # SSM port forwarding to the web UI, for an operator
            cloud_map_options=ecs.CloudMapOptions(name="master", cloud_map_namespace=namespace),
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=0,  # one master: a new one replaces it (its workers reconnect)
            max_healthy_percent=100,
        )
        self.workers = ecs.FargateService(
            self,
            "WorkerService",
            cluster=cluster,
            service_name=names.LOADGEN_WORKER_SERVICE,
            task_definition=worker,
            desired_count=props.load_gen_workers if deployable else 0,
            vpc_subnets=subnets,
            security_groups=[worker_group],
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=50,
            max_healthy_percent=200,
        )
        self.workers.node.add_dependency(self.master)  # a worker's first act is to call its master

        outputs = {
            "LoadGenClusterName": cluster.cluster_name,
            "LoadGenMasterServiceName": self.master.service_name,
            "LoadGenWorkerServiceName": self.workers.service_name,
            "LoadGenResultsBucket": self.bucket.bucket_name,
            "LoadGenLogGroup": self.log_group.log_group_name,
            "LoadGenTargetUrl": target_url,
        }
        for key, value in outputs.items():
            CfnOutput(self, key, value=value)
        self._acknowledge()

    def _task_definition(
        self,
        construct_id: str,
        props: StackProps,
        cpu: int,
        memory_mib: int,
        image: ecs.ContainerImage,
        *,
        command: list[str],
        ports: tuple[int, ...],
        environment: dict[str, str],
        secrets: dict[str, ecs.Secret],
        stream_prefix: str,
    ) -> ecs.FargateTaskDefinition:
        architecture = ecs.CpuArchitecture.ARM64 if props.use_arm64 else ecs.CpuArchitecture.X86_64
        definition = ecs.FargateTaskDefinition(
            self,
            construct_id,
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=architecture, operating_system_family=ecs.OperatingSystemFamily.LINUX
            ),
        )
        definition.add_container(
            "locust",
            image=image,
            command=command,
            port_mappings=[ecs.PortMapping(container_port=port) for port in ports] or None,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=stream_prefix, log_group=self.log_group),
            environment=environment,
            secrets=secrets,
            stop_timeout=Duration.seconds(30),
            essential=True,
        )
        return definition

    def _acknowledge(self) -> None:
        """The cdk-nag findings this stack accepts, each on its construct, with the reason."""
        rules = [
            (
                self.bucket,
                "AwsSolutions-S1",
                "The results bucket holds load test reports written by the master's task role only; "
                "object writes are in CloudTrail, an access-log bucket would add cost for no reader.",
            ),
            (
                self.node.find_child("Cluster"),
                "AwsSolutions-ECS4",
                "Cost-first (seed): Container Insights stays off for a load generator that runs for minutes; "
                "its logs and the run's own report cover it.",
            ),
        ]
        for role in ("Master", "Worker"):
            definition = self.node.find_child(role)
            rules.append(
                (
                    definition,
                    "AwsSolutions-ECS2",
                    "The environment holds the target URL and the results bucket's name, no secret; the "
                    "management token comes from Secrets Manager.",
                )
            )
            rules.append(
                (
                    definition.node.find_child("ExecutionRole"),
                    "AwsSolutions-IAM5[Resource::*]",
                    "ecr:GetAuthorizationToken has no resource-level permissions (AWS requires Resource *); "
                    "image pulls themselves are scoped to the stack's ECR repository.",
                )
            )
        task_role = self.node.find_child("Master").node.find_child("TaskRole")
        rules.append(
            (
                task_role,
                "AwsSolutions-IAM5[Resource::*]",
                "ECS Exec's ssmmessages actions (SSM port forwarding to the web UI) have no resource-level "
                "permissions.",
            )
        )
        bucket_id = self.get_logical_id(self.bucket.node.default_child)
        rules.append(
            (
                task_role,
                f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/runs/*]",
                "The master writes one folder of objects per run (runs/<run id>/...), PutObject only, in the "
                "stack's own results bucket.",
            )
        )
        for construct, rule, reason in rules:
            Validations.of(construct).acknowledge(Acknowledgment(id="AwsSolutions::" + rule, reason=reason))
