"""cdk-nag AwsSolutions acknowledgments, each with the seed decision that justifies it.

Each acknowledgment is scoped to the construct it is about (never the whole stack), so a new resource
with the same finding still fails synth until someone decides about it.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

from stack.config import StackProps

NAG = "AwsSolutions::"


def acknowledge_findings(stack: Stack, props: StackProps) -> None:
    """Acknowledge the findings the seed's design accepts; anything else fails synth."""
    rules: list[tuple[str, str, str]] = [
        (
            "Network/AlbSecurityGroup",
            "AwsSolutions-EC23",
            "The ALB is the public entry point: the seed's table opens 443 (and 80, only to redirect to "
            "HTTPS) to 0.0.0.0/0; nothing else in the stack accepts traffic from the internet.",
        ),
        (
            "Alb",
            "AwsSolutions-ELB2",
            "Cost-first (seed): no access-log bucket by default; requests are counted in CloudWatch metrics "
            "and the proxy logs every request with its X-Request-ID.",
        ),
        (
            "Cluster",
            "AwsSolutions-ECS4",
            "Cost-first (seed): Container Insights is opt-in (prop containerInsights); service CPU/memory "
            "metrics, alarms and the dashboard cover the seed's observability list.",
        ),
        (
            "Database/Cluster",
            "AwsSolutions-RDS6",
            "The app connects with the generated password from Secrets Manager (DATABASE_URL); IAM database "
            "authentication would need token refresh in the connection pool, which the seed does not plan.",
        ),
        (
            "Cache/ReplicationGroup",
            "AwsSolutions-AEC5",
            "Redis keeps its default port 6379 (the seed's security-group table); only the ECS security "
            "group may reach it.",
        ),
        (
            "Cache/ReplicationGroup",
            "AwsSolutions-AEC6",
            "No Redis AUTH token: access is limited to the ECS security group inside isolated subnets and "
            "traffic is TLS-encrypted (rediss://); the seed maps REDIS_*_URL from SSM, which must not hold a "
            "password.",
        ),
        (
            "AppConfig/ManagementToken",
            "AwsSolutions-SMG4",
            "Static API credential generated at deploy; rotated by hand with `devenv secret set` (the seed's "
            "config CLI) followed by an ECS redeploy; automatic rotation would need a rotation Lambda.",
        ),
        (
            "AppConfig/EncryptionKey",
            "AwsSolutions-SMG4",
            "ENCRYPTION_KEY encrypts stored upstream keys: rotating it would make them unreadable, so it is "
            "never rotated automatically.",
        ),
        (
            "AppConfig/AdminPassword",
            "AwsSolutions-SMG4",
            "ADMIN_PASSWORD is kept for the upstream admin UI, which this stack does not run; rotated "
            "by hand.",
        ),
        (
            "Database/UrlSecret",
            "AwsSolutions-SMG4",
            "DATABASE_URL is derived from the Aurora credentials at deploy time; it is refreshed by a "
            "deploy, not rotated on its own.",
        ),
        (
            "Network/Vpc",
            "AwsSolutions-VPC7",
            "Cost-first (seed): no VPC flow logs by default; security groups admit only the seed's table.",
        ),
        (
            "Database/Cluster",
            "CloudFormation-Validate::E9006",
            "Aurora PostgreSQL 18.6 is the newest 18.x in aws-cdk-lib 2.275 (major 18 is pinned everywhere); "
            "the validator's engine-version list stops at 18.4.",
        ),
    ]
    for role in ("Proxy", "Dispatcher"):
        rules.append(
            (
                f"{role}/TaskDefinition/ExecutionRole",
                "AwsSolutions-IAM5[Resource::*]",
                "ecr:GetAuthorizationToken has no resource-level permissions (AWS requires Resource *); "
                "image pulls themselves are scoped to the stack's ECR repository.",
            )
        )
    if not props.enable_db_credential_rotation:
        rules.append(
            (
                "Database/Cluster/Secret",
                "AwsSolutions-SMG4",
                "DB credential rotation is opt-in (enableDbCredentialRotation): DATABASE_URL is composed at "
                "deploy time, so a rotation needs a redeploy to reach new tasks (README).",
            )
        )
    if not props.deletion_protection:
        rules.append(
            (
                "Database/Cluster",
                "AwsSolutions-RDS10",
                "deletionProtection is off in this target's props (local/dev stacks are torn down); the aws "
                "props keep it on.",
            )
        )
    if props.redis_num_nodes == 1:
        rules.append(
            (
                "Cache/ReplicationGroup",
                "AwsSolutions-AEC4",
                "Single Redis node (seed decision, saves ~$12/month): the HTTP cache is non-critical and the "
                "event bus recovers on reconnect; redisNumNodes=2 adds a replica with automatic failover.",
            )
        )
    if props.enable_x_ray:
        for role in ("Proxy", "Dispatcher"):
            rules.append(
                (
                    f"{role}/TaskDefinition/TaskRole",
                    "AwsSolutions-IAM5[Resource::*]",
                    "The X-Ray daemon's trace and sampling actions have no resource-level permissions.",
                )
            )
            rules.append(
                (
                    f"{role}/TaskDefinition",
                    "AwsSolutions-ECS2",
                    "The only plain environment variable is AWS_XRAY_DAEMON_ADDRESS (the loopback sidecar, "
                    "not a secret); all app config comes from Secrets Manager and SSM.",
                )
            )
    if props.create_open_ai_api_key_secret:
        rules.append(
            (
                "AppConfig/OpenAiApiKey",
                "AwsSolutions-SMG4",
                "The upstream provider issues this key: it is replaced by hand with `devenv secret set "
                "openai-api-key` when the provider rotates it; AWS cannot rotate it.",
            )
        )
    if props.alarm_email:
        rules.append(
            (
                "Observability/AlarmTopic",
                "AwsSolutions-SNS2",
                "Alarm notifications carry no secrets; a KMS key would add cost the seed avoids.",
            )
        )
    for path, rule, reason in rules:
        rule_id = rule if "::" in rule else NAG + rule
        Validations.of(_find(stack, path)).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def _find(stack: Stack, path: str) -> IConstruct:
    node: IConstruct = stack
    for part in path.split("/"):
        node = node.node.find_child(part)
    return node
