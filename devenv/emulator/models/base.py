"""What every devenv CloudFormation model shares: property access that fails loudly, the calls moto's
CloudFormation makes, and attribute lookup; a model declares only what differs.

A model is a `moto.core.common_models.CloudFormationModel` subclass, listed in `devenv.emulator.models`.
Each stores its state in the moto backend of the matching AWS API, so a client reads back what the
template created.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

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


class ModelHooks:
    """What moto's CloudFormation asks of a model, from what differs between models.

    A model declares `TYPE` (the resource type) and `NAME_PROPERTY` (the property that names a resource,
    "" when none does), and implements `create_resource` from the resource's properties. `update_resource`
    defaults to a replacement (the old resource deleted, a new one created), as AWS does for a change that
    needs one; a model that changes in place overrides it. Mixed in first, it also serves a model that
    extends one of moto's classes (whose own methods would otherwise win).
    """

    TYPE: ClassVar[str] = ""  # "" only on the bases (moto lists them among its models too)
    NAME_PROPERTY: ClassVar[str] = ""

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        raise NotImplementedError(f"{cls.TYPE}: no create_resource")

    @classmethod
    def update_resource(
        cls, original: Any, name: str, properties: Any, account_id: str, region_name: str
    ) -> Any:
        original.delete(account_id, region_name)
        return cls.create_resource(name, properties, account_id, region_name)

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        return cls.create_resource(
            resource_name, cloudformation_json["Properties"], account_id, region_name, **kwargs
        )

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        return cls.update_resource(
            original_resource, new_resource_name, cloudformation_json["Properties"], account_id, region_name
        )


def moto_create(
    moto_class: Any,
    name: str,
    properties: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Any:
    """A resource made by moto's own CloudFormation model, which takes the resource's whole JSON."""
    return moto_class.create_from_cloudformation_json(
        name, {"Properties": properties}, account_id, region_name, **kwargs
    )


class ExtendsMoto(ModelHooks):
    """A model extending one of moto's classes (a base after this one): moto's code makes the object, which
    is re-classed (`adopt`) so it answers with this model's hooks and attributes. By default moto's
    CloudFormation model makes it from the properties."""

    @classmethod
    def adopt(cls, made: Any) -> Any:
        made.__class__ = cls
        return made

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        moto_class = next(
            base
            for base in cls.__mro__
            if base.__module__.startswith("moto.") and issubclass(base, CloudFormationModel)
        )
        return cls.adopt(moto_create(moto_class, name, properties, account_id, region_name, **kwargs))


class CfnAttributes:
    """`Fn::GetAtt` from `cfn_attributes()`, a map of names to zero-argument getters.

    An attribute the model does not provide raises `UnformattedGetAttTemplateException`, which moto turns
    into a template validation error (never a silently dropped property). Mixed in before a moto class, it
    replaces moto's (shorter) list of attributes.
    """

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


class DevenvModel(ModelHooks, CfnAttributes, CloudFormationModel):
    """A model of devenv's own (no moto class under it): made from its physical id unless it keeps more,
    and storing nothing outside the stack unless its `delete` says otherwise."""

    def __init__(self, physical_id: str) -> None:
        self.physical_id = physical_id

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def delete(self, account_id: str, region_name: str) -> None:
        """Nothing is stored outside the stack."""
