"""What every devenv CloudFormation model shares: property access that fails loudly, and attribute lookup.

A model is a `moto.core.common_models.CloudFormationModel` subclass; moto's CloudFormation finds it through
`CloudFormationModel.__subclasses__()`. Each model stores its state in the moto backend of the matching
AWS API, so a client reads back what the template created.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.common_models import CloudFormationModel


class TemplateError(Exception):
    """A resource's properties cannot be deployed; the message names the property and what is wrong."""


def required(properties: Any, name: str, resource_type: str) -> Any:
    """A property the resource type cannot do without."""
    if properties.get(name) in (None, ""):
        raise TemplateError(f"{resource_type}: property {name} is required")
    return properties[name]


def as_bool(value: Any) -> bool:
    """CloudFormation booleans arrive as bools or as the strings 'true'/'false'."""
    return str(value).lower() == "true"


def as_int(value: Any) -> int | None:
    return None if value is None else int(value)


def tag_list(properties: Any) -> list[dict[str, str]]:
    return [{"Key": tag["Key"], "Value": str(tag["Value"])} for tag in properties.get("Tags") or []]


class DevenvModel(CloudFormationModel):
    """Shared behaviour: attributes come from `cfn_attributes()`, a map of names to zero-argument getters.

    An attribute the model does not provide raises `UnformattedGetAttTemplateException`, which moto turns
    into a template validation error (never a silently dropped property).
    """

    physical_id: str = ""

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        return {}

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True  # checked for real in get_cfn_attribute, once the resource exists

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        getter = self.cfn_attributes().get(attribute_name)
        if getter is None:
            raise UnformattedGetAttTemplateException()
        return getter()
