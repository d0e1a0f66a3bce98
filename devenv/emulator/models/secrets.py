"""Secrets Manager resources: `Secret` (with GenerateSecretString) and `SecretTargetAttachment`.

Values live in moto's Secrets Manager backend, so `GetSecretValue` returns what the stack generated and
ECS `secrets` / `{{resolve:secretsmanager:...}}` references read the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from moto.secretsmanager.models import SecretsManagerBackend, secretsmanager_backends
from moto.secretsmanager.utils import random_password

from devenv.emulator import generated_secrets
from devenv.emulator.models.base import DevenvModel, TemplateError, as_bool, as_int, tag_list


def backend(account_id: str, region_name: str) -> SecretsManagerBackend:
    return secretsmanager_backends[account_id][region_name]


def generate_secret_string(spec: Any) -> str:
    """What CloudFormation's GenerateSecretString produces: a password, alone or merged into a JSON template."""
    password = random_password(
        password_length=as_int(spec.get("PasswordLength")) or 32,
        exclude_characters=spec.get("ExcludeCharacters", ""),
        exclude_numbers=as_bool(spec.get("ExcludeNumbers", False)),
        exclude_punctuation=as_bool(spec.get("ExcludePunctuation", False)),
        exclude_uppercase=as_bool(spec.get("ExcludeUppercase", False)),
        exclude_lowercase=as_bool(spec.get("ExcludeLowercase", False)),
        include_space=as_bool(spec.get("IncludeSpace", False)),
        require_each_included_type=as_bool(spec.get("RequireEachIncludedType", True)),
    )
    template = spec.get("SecretStringTemplate")
    key = spec.get("GenerateStringKey")
    if template is None and key is None:
        return password
    if template is None or key is None:
        raise TemplateError(
            "AWS::SecretsManager::Secret: GenerateSecretString needs both SecretStringTemplate and GenerateStringKey"
        )
    try:
        document = json.loads(template)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"AWS::SecretsManager::Secret: SecretStringTemplate is not JSON: {exc}") from exc
    document[key] = password
    return json.dumps(document)


class Secret(DevenvModel):
    """AWS::SecretsManager::Secret; Ref and Id are the ARN, as on AWS."""

    TYPE = "AWS::SecretsManager::Secret"
    NAME_PROPERTY = "Name"

    def __init__(self, account_id: str, region_name: str, arn: str, name: str) -> None:
        self.account_id = account_id
        self.region_name = region_name
        self.physical_id = arn
        self.name = name

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        return {"Id": lambda: self.physical_id}

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Secret:
        if "SecretString" in properties and "GenerateSecretString" in properties:
            raise TemplateError(
                "AWS::SecretsManager::Secret: SecretString and GenerateSecretString are exclusive"
            )
        name = properties.get("Name") or name
        if "GenerateSecretString" in properties:
            spec = properties["GenerateSecretString"]
            value = generated_secrets.remembered(
                f"{region_name}/{name}/{json.dumps(spec, sort_keys=True)}",
                lambda: generate_secret_string(spec),
            )
        else:
            value = properties.get("SecretString")
        created = json.loads(
            backend(account_id, region_name).create_secret(
                name=name,
                secret_string=value,
                secret_binary=None,
                description=properties.get("Description"),
                tags=tag_list(properties) or None,
                kms_key_id=properties.get("KmsKeyId"),
                client_request_token=None,
                replica_regions=[],
                force_overwrite=False,
            )
        )
        return cls(account_id, region_name, created["ARN"], name)

    @classmethod
    def update_resource(
        cls, original: Secret, name: str, properties: Any, account_id: str, region_name: str
    ) -> Secret:
        """A changed description or literal value is applied in place; a generated value is kept."""
        secrets = backend(account_id, region_name)
        stored = secrets.describe_secret(original.physical_id)
        stored.description = properties.get("Description")  # type: ignore[misc]
        value = properties.get("SecretString")
        if value is not None and value != secrets.get_secret_value(stored.arn, None, None).get(  # type: ignore[arg-type]
            "SecretString"
        ):
            secrets.put_secret_value(
                stored.arn,
                secret_string=value,
                secret_binary=None,  # type: ignore[arg-type]
                client_request_token=None,  # type: ignore[arg-type]
                version_stages=["AWSCURRENT"],
            )
        return original

    def delete(self, account_id: str, region_name: str) -> None:
        backend(account_id, region_name).delete_secret(
            self.physical_id, recovery_window_in_days=None, force_delete_without_recovery=True
        )


class SecretTargetAttachment(DevenvModel):
    """Merges the target database's engine, host, port and identifier into the secret's JSON, as AWS does.
    It owns nothing of its own: the secret goes with the Secret resource."""

    TYPE = "AWS::SecretsManager::SecretTargetAttachment"

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> SecretTargetAttachment:
        from devenv.emulator.models.rds import find_target

        secret_id = properties.get("SecretId")
        target_id = properties.get("TargetId")
        target_type = properties.get("TargetType")
        if not secret_id or not target_id or not target_type:
            raise TemplateError(
                "AWS::SecretsManager::SecretTargetAttachment: SecretId, TargetId and TargetType are required"
            )
        connection = find_target(account_id, region_name, target_type, target_id)
        secrets = backend(account_id, region_name)
        current = secrets.get_secret_value(secret_id, None, None)["SecretString"]  # type: ignore[arg-type]
        try:
            document = json.loads(current)
        except (TypeError, json.JSONDecodeError) as exc:
            raise TemplateError(
                f"AWS::SecretsManager::SecretTargetAttachment: secret {secret_id} does not hold a JSON object"
            ) from exc
        document.update(connection)
        secrets.put_secret_value(
            secret_id,
            secret_string=json.dumps(document),
            secret_binary=None,  # type: ignore[arg-type]
            client_request_token=None,  # type: ignore[arg-type]
            version_stages=["AWSCURRENT"],
        )
        return cls(secrets.describe_secret(secret_id).arn)

    @classmethod
    def update_resource(
        cls, original: SecretTargetAttachment, name: str, properties: Any, account_id: str, region_name: str
    ) -> SecretTargetAttachment:
        return cls.create_resource(name, properties, account_id, region_name)
