"""The app's secrets (Secrets Manager, generated: never in the template) and config (SSM parameters)."""

from __future__ import annotations

from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stack.config import StackProps
from stack.names import PARAMETERS, SECRETS


class AppConfig(Construct):
    """`secrets` and `parameters` are keyed by the short names of stack/names.py."""

    def __init__(self, scope: Construct, construct_id: str, *, props: StackProps, redis_url: str) -> None:
        super().__init__(scope, construct_id)
        self.secrets: dict[str, secretsmanager.ISecret] = {
            "management-token": self._generated(
                "ManagementToken", "management-token", "MANAGEMENT_TOKEN for the management API", 48
            ),
            "encryption-key": self._generated(
                "EncryptionKey", "encryption-key", "ENCRYPTION_KEY: encrypts upstream API keys at rest", 64
            ),
            "admin-password": self._generated(
                "AdminPassword", "admin-password", "ADMIN_PASSWORD, kept for the upstream admin UI", 32
            ),
        }
        if props.create_open_ai_api_key_secret:
            self.secrets["openai-api-key"] = self._generated(
                "OpenAiApiKey",
                "openai-api-key",
                "OPENAI_API_KEY placeholder: set it with `devenv secret set openai-api-key`",
                32,
            )
        values = {
            "log-level": (props.log_level.lower(), "LOG_LEVEL"),
            "cache-enabled": ("true" if props.cache_enabled else "false", "HTTP_CACHE_ENABLED"),
            "rate-limit-rpm": (str(props.rate_limit_rpm), "RATE_LIMIT_RPM (0 = no limit)"),
            "redis-url": (redis_url, "REDIS_CACHE_URL / REDIS_EVENT_URL: the ElastiCache primary endpoint"),
            "upstream-url": (props.upstream_url, "OPENAI_API_URL: where the proxy forwards /v1/*"),
        }
        self.parameters: dict[str, ssm.IStringParameter] = {
            short: ssm.StringParameter(
                self,
                "".join(part.capitalize() for part in short.split("-")),
                parameter_name=PARAMETERS[short],
                string_value=value,
                description=description,
            )
            for short, (value, description) in values.items()
        }

    def _generated(
        self, construct_id: str, short: str, description: str, length: int
    ) -> secretsmanager.Secret:
        return secretsmanager.Secret(
            self,
            construct_id,
            secret_name=SECRETS[short],
            description=description,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=length, exclude_punctuation=True, include_space=False
            ),
        )
