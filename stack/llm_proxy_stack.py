"""LlmProxyStack: the seed's single stack (VPC, ECS Fargate, ALB, Aurora, Redis, secrets, observability).

Asset-free: the services run an image tag from the props (the app pipeline pushes images), so the
template deploys with nothing but CloudFormation.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from constructs import Construct

from stack import names
from stack.config import StackProps
from stack.constructs.app_config import AppConfig
from stack.constructs.cache import Cache
from stack.constructs.database import Database
from stack.constructs.network import Network
from stack.constructs.observability import Observability
from stack.constructs.repository import image_repository
from stack.constructs.service import AppService
from stack.nag import acknowledge_findings


class LlmProxyStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, props: StackProps, **kwargs: Any) -> None:
        super().__init__(
            scope, construct_id, description="LLM Proxy on ECS Fargate (devenv stack/)", **kwargs
        )
        self.props = props
        deployable = props.image_tag is not None

        network = Network(self, "Network", props=props)
        groups = network.security_groups
        vpc = network.vpc

        database = Database(
            self,
            "Database",
            props=props,
            vpc=vpc,
            subnets=network.data_subnets,
            security_group=groups.database,
        )
        cache = Cache(
            self,
            "Cache",
            props=props,
            subnet_ids=vpc.select_subnets(
                subnet_type=ec2.SubnetType.PRIVATE_ISOLATED
                if vpc.isolated_subnets
                else ec2.SubnetType.PRIVATE_WITH_EGRESS
            ).subnet_ids,
            security_group=groups.redis,
        )
        config = AppConfig(self, "AppConfig", props=props, redis_url=cache.url)
        all_secrets = {**config.secrets, "database-url": database.url_secret}

        repository = image_repository(
            self, "Repository", names.ECR_REPOSITORY_NAME, image_tag_mutability=ecr.TagMutability.MUTABLE
        )
        cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            cluster_name=names.NAME_PREFIX,
            container_insights_v2=ecs.ContainerInsights.ENABLED
            if props.container_insights
            else ecs.ContainerInsights.DISABLED,
        )

        proxy_secrets = {env: all_secrets[short] for env, short in names.PROXY_SECRETS.items()}
        if "openai-api-key" in config.secrets:
            proxy_secrets[names.OPENAI_API_KEY_ENV] = config.secrets["openai-api-key"]
        proxy = AppService(
            self,
            "Proxy",
            props=props,
            name="proxy",
            command=names.PROXY_COMMAND,
            cpu=props.proxy_cpu,
            memory_mib=props.proxy_memory_mib,
            desired_count=props.proxy_min_tasks if deployable else 0,
            cluster=cluster,
            repository=repository,
            subnets=network.app_subnets,
            security_group=groups.ecs,
            secrets=proxy_secrets,
            parameters={env: config.parameters[short] for env, short in names.PROXY_PARAMETERS.items()},
            port=names.CONTAINER_PORT,
            health_check_grace=Duration.seconds(60),
        )
        dispatcher = AppService(
            self,
            "Dispatcher",
            props=props,
            name="dispatcher",
            command=names.DISPATCHER_COMMAND,
            cpu=props.dispatcher_cpu,
            memory_mib=props.dispatcher_memory_mib,
            desired_count=1 if deployable else 0,
            cluster=cluster,
            repository=repository,
            subnets=network.app_subnets,
            security_group=groups.ecs,
            secrets={env: all_secrets[short] for env, short in names.DISPATCHER_SECRETS.items()},
            parameters={env: config.parameters[short] for env, short in names.DISPATCHER_PARAMETERS.items()},
        )

        load_balancer, target_group = self._load_balancer(props, network, proxy.service)
        scaling = proxy.service.auto_scale_task_count(
            min_capacity=props.proxy_min_tasks if deployable else 0, max_capacity=props.proxy_max_tasks
        )
        scale_in = Duration.seconds(props.scale_in_cooldown_seconds)
        scale_out = Duration.seconds(props.scale_out_cooldown_seconds)
        scaling.scale_on_cpu_utilization(
            "CpuScaling",
            target_utilization_percent=props.cpu_target_percent,
            scale_in_cooldown=scale_in,
            scale_out_cooldown=scale_out,
        )
        scaling.scale_on_request_count(
            "RequestScaling",
            requests_per_target=props.requests_per_target,
            target_group=target_group,
            scale_in_cooldown=scale_in,
            scale_out_cooldown=scale_out,
        )

        Observability(
            self,
            "Observability",
            props=props,
            load_balancer=load_balancer,
            target_group=target_group,
            proxy_service=proxy.service,
            dispatcher_service=dispatcher.service,
            database=database.cluster,
            redis_member_ids=cache.member_ids,
        )

        scheme = "https" if props.https else "http"
        host = (
            props.domain_name if props.https and props.domain_name else load_balancer.load_balancer_dns_name
        )
        next_step = (
            f"Services run image tag {props.image_tag!r}; the app pipeline pushes new images."
            if deployable
            else "No imageTag yet: services have desiredCount 0. Push a multi-arch image, then "
            "redeploy with it: docker buildx build --platform linux/arm64,linux/amd64 "
            f"-t {repository.repository_uri}:TAG --push . && devenv deploy --target aws "
            "(with imageTag=TAG in stack/props/aws.json)"
        )
        # what the load generator's stack (stack/loadgen_stack.py) takes from this one
        self.vpc = vpc
        self.app_subnets = network.app_subnets
        self.url = f"{scheme}://{host}"
        self.management_token = config.secrets["management-token"]
        outputs = {
            "AlbUrl": self.url,
            "AlbDnsName": load_balancer.load_balancer_dns_name,
            "ClusterName": cluster.cluster_name,
            "ProxyServiceName": proxy.service.service_name,
            "DispatcherServiceName": dispatcher.service.service_name,
            "ManagementTokenSecretArn": config.secrets["management-token"].secret_arn,
            "EncryptionKeySecretArn": config.secrets["encryption-key"].secret_arn,
            "AdminPasswordSecretArn": config.secrets["admin-password"].secret_arn,
            "DatabaseSecretArn": database.secret.secret_arn,
            "DatabaseUrlSecretArn": database.url_secret.secret_arn,
            "DatabaseEndpoint": database.cluster.cluster_endpoint.socket_address,
            "DatabaseClusterId": database.cluster.cluster_identifier,
            "RedisEndpoint": f"{cache.endpoint}:{cache.port}",
            "RedisReplicationGroupId": cache.replication_group.ref,
            "EcrRepositoryUri": repository.repository_uri,
            "ImageTag": props.image_tag or "none",
            "NextStep": next_step,
        }
        if "openai-api-key" in config.secrets:
            outputs["OpenAiApiKeySecretArn"] = config.secrets["openai-api-key"].secret_arn
        for key, value in outputs.items():
            CfnOutput(self, key, value=value)

        acknowledge_findings(self, props)

    def _load_balancer(
        self, props: StackProps, network: Network, proxy_service: ecs.FargateService
    ) -> tuple[elbv2.ApplicationLoadBalancer, elbv2.ApplicationTargetGroup]:
        """Internet-facing ALB: HTTPS 443 + redirect on 80, or plain HTTP 80 when no domain is given."""
        load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "Alb",
            vpc=network.vpc,
            internet_facing=True,
            vpc_subnets=network.public_subnets,
            security_group=network.security_groups.alb,
            drop_invalid_header_fields=True,
            idle_timeout=Duration.seconds(120),
        )
        target_group = elbv2.ApplicationTargetGroup(
            self,
            "ProxyTargets",
            vpc=network.vpc,
            port=names.CONTAINER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            health_check=elbv2.HealthCheck(
                path=props.health_check_path,
                interval=Duration.seconds(props.health_check_interval_seconds),
                timeout=Duration.seconds(5),
                healthy_threshold_count=props.healthy_threshold_count,
                unhealthy_threshold_count=props.unhealthy_threshold_count,
                healthy_http_codes="200",
            ),
            deregistration_delay=Duration.seconds(props.deregistration_delay_seconds),
            targets=[proxy_service],
        )
        zone = (
            route53.HostedZone.from_hosted_zone_attributes(
                self, "Zone", hosted_zone_id=props.hosted_zone_id, zone_name=props.hosted_zone_name
            )
            if props.hosted_zone_id and props.hosted_zone_name
            else None
        )
        if props.https:
            certificate = (
                acm.Certificate.from_certificate_arn(self, "Certificate", props.existing_certificate_arn)
                if props.existing_certificate_arn
                else acm.Certificate(
                    self,
                    "Certificate",
                    domain_name=str(props.domain_name),
                    validation=acm.CertificateValidation.from_dns(zone),
                )
            )
            load_balancer.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[certificate],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                default_target_groups=[target_group],
                open=False,
            )
            load_balancer.add_redirect(source_port=80, target_port=443, open=False)
        else:
            load_balancer.add_listener(
                "Http",
                port=80,
                protocol=elbv2.ApplicationProtocol.HTTP,
                default_target_groups=[target_group],
                open=False,
            )
        if zone is not None and props.domain_name:
            route53.ARecord(
                self,
                "AliasRecord",
                zone=zone,
                record_name=props.domain_name,
                target=route53.RecordTarget.from_alias(route53_targets.LoadBalancerTarget(load_balancer)),
            )
        return load_balancer, target_group
