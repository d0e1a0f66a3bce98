"""Aurora PostgreSQL 18 Serverless v2: a writer (and optional readers), encrypted, credentials generated."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, SecretValue
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stack.config import StackProps
from stack.names import DATABASE_NAME, DATABASE_USER, SECRETS

# The newest PostgreSQL 18 the CDK offers: major 18 is pinned everywhere (Aurora, compose, local).
ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_18_6
# Characters that would need escaping inside a postgresql:// URL (DATABASE_URL is composed, not encoded).
URL_RESERVED_CHARACTERS = " \"'`\\/@:?#[]$&()*+,;=%!~^{}|<>"


class Database(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: StackProps,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        readers = [
            rds.ClusterInstance.serverless_v2(f"Reader{index + 1}", scale_with_writer=index == 0)
            for index in range(props.aurora_readers)
        ]
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE_VERSION),
            credentials=rds.Credentials.from_generated_secret(
                DATABASE_USER,
                secret_name=SECRETS["database-credentials"],
                exclude_characters=URL_RESERVED_CHARACTERS,
            ),
            default_database_name=DATABASE_NAME,
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            readers=readers or None,
            serverless_v2_min_capacity=props.aurora_min_capacity,
            serverless_v2_max_capacity=props.aurora_max_capacity,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[security_group],
            storage_encrypted=True,
            backup=rds.BackupProps(retention=Duration.days(props.aurora_backup_retention_days)),
            deletion_protection=props.deletion_protection,
            removal_policy=RemovalPolicy.SNAPSHOT,
            cloudwatch_logs_exports=["postgresql"],
        )
        secret = self.cluster.secret
        assert secret is not None  # from_generated_secret always attaches one
        self.secret: secretsmanager.ISecret = secret
        if props.enable_db_credential_rotation:
            # Single-user rotation through the AWS-hosted rotation application; see README for what
            # it means for the DATABASE_URL secret and running tasks.
            self.cluster.add_rotation_single_user(automatically_after=Duration.days(30))

        # ECS cannot template a URL from a secret's fields, so CloudFormation composes it at deploy time
        # from dynamic references: the template holds `{{resolve:secretsmanager:...}}`, never the password.
        url = (
            "postgresql://"
            + secret.secret_value_from_json("username").unsafe_unwrap()
            + ":"
            + secret.secret_value_from_json("password").unsafe_unwrap()
            + "@"
            + self.cluster.cluster_endpoint.socket_address
            + "/"
            + DATABASE_NAME
        )
        self.url_secret = secretsmanager.Secret(
            self,
            "UrlSecret",
            secret_name=SECRETS["database-url"],
            description="DATABASE_URL for the proxy and dispatcher, composed from the Aurora credentials",
            secret_string_value=SecretValue.unsafe_plain_text(url),
        )
