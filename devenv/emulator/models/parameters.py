"""SSM parameters; moto's model fails on a parameter without an explicit Name (the CDK's default)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from moto.ssm.models import SimpleSystemManagerBackend, ssm_backends

from devenv.emulator.models.base import DevenvModel, TemplateError, required


def backend(account_id: str, region_name: str) -> SimpleSystemManagerBackend:
    return ssm_backends[account_id][region_name]


class Parameter(DevenvModel):
    """AWS::SSM::Parameter; Ref is the name (generated `CFN-<logical id>-<suffix>` when absent, as on AWS)."""

    TYPE = "AWS::SSM::Parameter"
    NAME_PROPERTY = "Name"

    def __init__(self, name: str, parameter_type: str, value: str) -> None:
        self.physical_id = name
        self.parameter_type = parameter_type
        self.value = value

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        return {"Type": lambda: self.parameter_type, "Value": lambda: self.value}

    @classmethod
    def _put(
        cls, name: str, properties: Any, account_id: str, region_name: str, overwrite: bool
    ) -> Parameter:
        kind = cls.TYPE
        parameter_type = required(properties, "Type", kind)
        if parameter_type not in ("String", "StringList"):
            raise TemplateError(
                f"{kind}: Type {parameter_type!r} cannot be created by CloudFormation (String or StringList)"
            )
        value = str(required(properties, "Value", kind))
        tags = properties.get("Tags") or {}
        backend(account_id, region_name).put_parameter(
            name=name,
            description=properties.get("Description"),
            value=value,
            parameter_type=parameter_type,
            allowed_pattern=properties.get("AllowedPattern"),
            keyid=None,  # type: ignore[arg-type]
            overwrite=overwrite,
            tags=[{"Key": k, "Value": v} for k, v in tags.items()] if isinstance(tags, dict) else tags,
            data_type=properties.get("DataType") or "text",
            tier=properties.get("Tier"),
            policies=properties.get("Policies"),
        )
        return cls(name, parameter_type, value)

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Parameter:
        name = properties.get("Name") or f"CFN-{kwargs.get('LogicalId', name)}-{name.rsplit('-', 1)[-1]}"
        return cls._put(name, properties, account_id, region_name, overwrite=False)

    @classmethod
    def update_resource(
        cls, original: Parameter, name: str, properties: Any, account_id: str, region_name: str
    ) -> Parameter:
        """A new value is a new version of the same parameter; a new Name replaces it."""
        name = properties.get("Name") or original.physical_id
        if name != original.physical_id:
            original.delete(account_id, region_name)
            return cls._put(name, properties, account_id, region_name, overwrite=False)
        return cls._put(name, properties, account_id, region_name, overwrite=True)

    def delete(self, account_id: str, region_name: str) -> None:
        ssm = backend(account_id, region_name)
        if ssm.get_parameter(self.physical_id) is not None:
            ssm.delete_parameter(self.physical_id)
