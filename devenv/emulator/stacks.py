"""How the emulator's CloudFormation differs from moto's: strict, resolving, failing like AWS.

`devenv.emulator.moto_patches` puts the functions below in place of moto's (once per process):
- the devenv models are added to moto's model list (later entries replace moto's own);
- strict mode: a template naming a resource type without a model is rejected up front (400, the types
  and logical ids named); an attribute a model does not implement, or a Ref to a resource with no
  physical id, is an error instead of a dropped property;
- `{{resolve:secretsmanager:...}}` and `{{resolve:ssm:...}}` are resolved in resource properties;
- each resource gets CREATE/UPDATE events; a failing resource becomes a CREATE_FAILED/UPDATE_FAILED event
  and the stack rolls back (ROLLBACK_COMPLETE / UPDATE_ROLLBACK_COMPLETE) instead of an HTTP 500;
- `Fn::GetStackOutput` (the CDK's cross-stack reference) reads the named stack's output;
- stacks made through change sets get their Outputs; `UsePreviousValue` works for defaulted parameters;
- a model without an update method is replaced (deleted and created) on update, never stored as None.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException, ValidationError
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import JsonRESTError, ServiceException, _RESTError
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends

from devenv.emulator.deleters import DELETERS
from devenv.emulator.imported import record_imported_network, record_imported_zones
from devenv.emulator.models import MODELS
from devenv.emulator.models.base import TemplateError

_state = {"strict": True}

DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:(secretsmanager|ssm|ssm-secure):([^}]*)\}\}")
SCALAR_TYPES = (str, int, float, bool, list, dict)


class ResourceFailed(Exception):
    """A resource could not be created or updated; its event is already recorded on the stack."""

    def __init__(self, logical_id: str, reason: str) -> None:
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id = logical_id
        self.reason = reason


def is_strict() -> bool:
    return bool(_state["strict"])


def describe(exc: BaseException) -> str:
    """A one-line reason for an event: the AWS-style message when there is one."""
    if isinstance(exc, ResourceFailed):
        return exc.reason
    if isinstance(exc, ServiceException):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, _RESTError | JsonRESTError):
        return f"{getattr(exc, 'error_type', type(exc).__name__)}: {getattr(exc, 'message', exc)}"
    if isinstance(exc, TemplateError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# ----- strict mode -------------------------------------------------------------------------------------


def unsupported_resources(template: dict[str, Any]) -> list[tuple[str, str]]:
    """(logical id, type) of every resource the emulator has no model for."""
    known = parsing.get_model_map()
    missing = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        resource_type = resource.get("Type", "") if isinstance(resource, dict) else ""
        if resource_type in parsing.NULL_MODELS:
            continue
        if resource_type not in known:
            missing.append((logical_id, resource_type))
    return missing


def check_template(template_body: str | dict[str, Any]) -> None:
    """In strict mode, refuse a template with a resource type that has no model, before creating anything."""
    if not is_strict() or not template_body:
        return
    template = (
        template_body if isinstance(template_body, dict) else cfn_models.Stack.parse_template(template_body)
    )
    if not isinstance(template, dict):
        raise ValidationError(message="Template format error: the template is not a JSON or YAML object")
    missing = unsupported_resources(template)
    if missing:
        types = sorted({resource_type for _, resource_type in missing})
        named = ", ".join(f"{logical_id} ({resource_type})" for logical_id, resource_type in missing)
        raise ValidationError(
            message=(
                f"Template format error: Unrecognized resource types: [{', '.join(types)}]; "
                f"the devenv local cloud has no model for: {named} (strict mode)"
            )
        )


def stack_output(reference: Any, resources_map: Any, clean: Callable[[Any, Any], Any]) -> Any:
    """`Fn::GetStackOutput` (how the CDK passes a value from one stack to another): the named output of
    a deployed stack in this account; a stack or output that is not there fails the template, as on AWS."""
    reference = clean(reference, resources_map)
    stack_name, output_name = reference.get("StackName"), reference.get("OutputName")
    region = reference.get("Region") or resources_map._region_name
    backend = cfn_models.cloudformation_backends[resources_map._account_id][region]
    stack = next(
        (
            s
            for s in backend.stacks.values()
            if stack_name in (s.name, s.stack_id) and s.status != "DELETE_COMPLETE"
        ),
        None,
    )
    if stack is None:
        raise ValidationError(
            message=f"Template error: Fn::GetStackOutput names stack {stack_name} in {region}, which does not exist"
        )
    for output in stack.output_map.values():
        if output and output.key == output_name:
            return output.value
    raise ValidationError(message=f"Template error: stack {stack_name} has no output {output_name}")


def strict_clean_json(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::GetStackOutput" in resource_json:
            return stack_output(resource_json["Fn::GetStackOutput"], resources_map, clean_json)
        if not is_strict() or not isinstance(resource_json, dict):
            return original(resource_json, resources_map)
        if "Fn::GetAtt" in resource_json:
            target = resource_json["Fn::GetAtt"]
            logical_id, attribute = target.split(".", 1) if isinstance(target, str) else target
            resource = resources_map.get(logical_id)
            if resource is not None and hasattr(resource, "get_cfn_attribute"):
                try:
                    return resource.get_cfn_attribute(attribute)
                except UnformattedGetAttTemplateException:
                    raise ValidationError(
                        message=UnformattedGetAttTemplateException.description.format(logical_id, attribute)
                    ) from None
                except NotImplementedError:
                    raise ValidationError(
                        message=f"Template error: attribute {attribute} of {logical_id} is not implemented by the "
                        "local cloud (strict mode)"
                    ) from None
        result = original(resource_json, resources_map)
        if "Ref" in resource_json and result is not None and not isinstance(result, SCALAR_TYPES):
            raise ValidationError(
                message=f"Template error: Ref {resource_json['Ref']} has no physical id in the local cloud (strict mode)"
            )
        return result

    return clean_json


# ----- dynamic references ------------------------------------------------------------------------------


def _resolve_secret(reference: str, account_id: str, region_name: str) -> str:
    parts = reference.split(":")
    if reference.startswith("arn:"):
        secret_id, rest = ":".join(parts[:7]), parts[7:]
    else:
        secret_id, rest = parts[0], parts[1:]
    rest += [""] * (4 - len(rest))
    _, json_key, version_stage, version_id = rest[:4]
    secrets = secretsmanager_backends[account_id][region_name]
    try:
        value = secrets.get_secret_value(secret_id, version_id or None, version_stage or None)["SecretString"]  # type: ignore[arg-type]
    except (ServiceException, _RESTError) as exc:
        raise TemplateError(
            f"dynamic reference {{{{resolve:secretsmanager:{reference}}}}}: {describe(exc)}"
        ) from exc
    if not json_key:
        return str(value)
    try:
        return str(json.loads(value)[json_key])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise TemplateError(
            f"dynamic reference {{{{resolve:secretsmanager:{reference}}}}}: the secret has no JSON key {json_key!r}"
        ) from None


def _resolve_parameter(reference: str, account_id: str, region_name: str) -> str:
    name = reference.rsplit(":", 1)[0] if re.search(r":\d+$", reference) else reference
    parameter = ssm_backends[account_id][region_name].get_parameter(name)
    if parameter is None:
        raise TemplateError(
            f"dynamic reference {{{{resolve:ssm:{reference}}}}}: parameter {name} does not exist"
        )
    return str(parameter.value)


def resolve_references(value: Any, account_id: str, region_name: str) -> Any:
    """Replace every dynamic reference inside strings, lists and dicts."""
    if isinstance(value, str) and "{{resolve:" in value:

        def replace(match: re.Match[str]) -> str:
            service, reference = match.group(1), match.group(2)
            if service == "secretsmanager":
                return _resolve_secret(reference, account_id, region_name)
            return _resolve_parameter(reference, account_id, region_name)

        return DYNAMIC_REFERENCE.sub(replace, value)
    if isinstance(value, list):
        return [resolve_references(item, account_id, region_name) for item in value]
    if isinstance(value, dict):
        return {key: resolve_references(item, account_id, region_name) for key, item in value.items()}
    return value


def resolving_parse_resource(original: Callable[..., Any]) -> Callable[..., Any]:
    def parse_resource(resource_json: dict[str, Any], resources_map: Any) -> Any:
        parsed = original(resource_json, resources_map)
        if parsed is None:
            if is_strict() and resource_json.get("Type") not in parsing.NULL_MODELS:
                raise TemplateError(
                    f"resource type {resource_json.get('Type')} has no model in the local cloud"
                )
            return parsed
        resource_class, cleaned, resource_type = parsed
        cleaned = resolve_references(cleaned, resources_map._account_id, resources_map._region_name)
        return resource_class, cleaned, resource_type

    return parse_resource


# ----- events, failures, rollback ----------------------------------------------------------------------


def _stack_of(resources_map: Any) -> cfn_models.Stack | None:
    backend = cfn_models.cloudformation_backends[resources_map._account_id][resources_map._region_name]
    return backend.stacks.get(resources_map.stack_id)


def add_event(
    stack: cfn_models.Stack | None,
    logical_id: str,
    resource_type: str,
    status: str,
    physical_id: str | None = None,
    reason: str | None = None,
) -> None:
    if stack is None:
        return
    stack.events.append(
        cfn_models.Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=physical_id or "",
            resource_type=resource_type,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


def recording_create(original: Callable[..., Any]) -> Callable[..., Any]:
    def parse_and_create_resource(
        logical_id: str, resource_json: dict[str, Any], resources_map: Any, account_id: str, region_name: str
    ) -> Any:
        stack = _stack_of(resources_map)
        resource_type = resource_json.get("Type", "")
        try:
            resource = original(logical_id, resource_json, resources_map, account_id, region_name)
        except ResourceFailed:
            add_event(stack, logical_id, resource_type, "CREATE_FAILED", reason="Resource creation cancelled")
            raise
        except Exception as exc:
            reason = describe(exc)
            add_event(stack, logical_id, resource_type, "CREATE_FAILED", reason=reason)
            raise ResourceFailed(logical_id, reason) from exc
        if resource is not None:
            add_event(
                stack,
                logical_id,
                resource_type,
                "CREATE_COMPLETE",
                physical_id=getattr(resource, "physical_resource_id", None),
            )
        return resource

    return parse_and_create_resource


def _has_update(resource_class: type[CloudFormationModel] | None) -> bool:
    update = getattr(resource_class, "update_from_cloudformation_json", None)
    return update is not None and not hasattr(update, "__isabstractmethod__")


def recording_update(original: Callable[..., Any]) -> Callable[..., Any]:
    def parse_and_update_resource(
        logical_id: str, resource_json: dict[str, Any], resources_map: Any, account_id: str, region_name: str
    ) -> Any:
        stack = _stack_of(resources_map)
        resource_type = resource_json.get("Type", "")
        try:
            if _has_update(parsing.resource_class_from_type(resource_type)):
                resource = original(logical_id, resource_json, resources_map, account_id, region_name)
            else:
                resource = _replace(logical_id, resource_json, resources_map, account_id, region_name)
        except Exception as exc:
            reason = describe(exc)
            add_event(stack, logical_id, resource_type, "UPDATE_FAILED", reason=reason)
            raise ResourceFailed(logical_id, reason) from exc
        add_event(
            stack,
            logical_id,
            resource_type,
            "UPDATE_COMPLETE",
            physical_id=getattr(resource, "physical_resource_id", None),
        )
        return resource

    return parse_and_update_resource


def _replace(
    logical_id: str, resource_json: dict[str, Any], resources_map: Any, account_id: str, region_name: str
) -> Any:
    """Replacement for a model moto cannot update: delete the old resource, create the new one."""
    old = resources_map._parsed_resources.pop(logical_id, None)
    if old is not None and not isinstance(old, str):
        resources_map._delete_resource(old, resources_map._resource_json_map.get(logical_id, resource_json))
    return parsing.parse_and_create_resource(
        logical_id, resource_json, resources_map, account_id, region_name
    )


def failing_create_resources(
    original: Callable[[cfn_models.Stack], None],
) -> Callable[[cfn_models.Stack], None]:
    def create_resources(stack: cfn_models.Stack) -> None:
        try:
            original(stack)
        except Exception as exc:
            _roll_back_create(stack, describe(exc))

    return create_resources


def _roll_back_create(stack: cfn_models.Stack, reason: str) -> None:
    stack.output_map = parsing.OutputMap(
        stack.resource_map, {}, stack.stack_id
    )  # a failed stack has no outputs
    stack._add_stack_event("CREATE_FAILED", resource_status_reason=reason)
    stack._add_stack_event(
        "ROLLBACK_IN_PROGRESS", resource_status_reason=f"The following resource(s) failed to create: {reason}"
    )
    stack.status = "ROLLBACK_IN_PROGRESS"
    try:
        stack.resource_map.delete()
    except Exception as exc:
        stack.status = "ROLLBACK_FAILED"
        stack._add_stack_event("ROLLBACK_FAILED", resource_status_reason=describe(exc))
        return
    stack.status = "ROLLBACK_COMPLETE"
    stack._add_stack_event("ROLLBACK_COMPLETE")


def failing_update(original: Callable[..., None]) -> Callable[..., None]:
    def update(
        stack: cfn_models.Stack,
        template: str,
        role_arn: str | None = None,
        parameters: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        previous_template, previous_parameters = stack.template, dict(stack.resource_map.input_parameters)
        try:
            original(stack, template, role_arn=role_arn, parameters=parameters, tags=tags)
        except Exception as exc:
            _roll_back_update(stack, describe(exc), previous_template, previous_parameters)

    return update


def _roll_back_update(
    stack: cfn_models.Stack, reason: str, template: Any, parameters: dict[str, Any]
) -> None:
    stack._add_stack_event("UPDATE_FAILED", resource_status_reason=reason)
    stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
    stack.template = template
    stack._parse_template()
    stack.resource_map.input_parameters = dict(parameters)
    stack.parameters = dict(parameters)
    try:
        stack.resource_map.update(stack.template_dict, parameters)
        stack.output_map = stack._create_output_map()
    except Exception as exc:
        stack.status = "UPDATE_ROLLBACK_FAILED"
        stack._add_stack_event("UPDATE_ROLLBACK_FAILED", resource_status_reason=describe(exc))
        return
    stack.status = "UPDATE_ROLLBACK_COMPLETE"
    stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")


def failing_delete(original: Callable[[cfn_models.Stack], None]) -> Callable[[cfn_models.Stack], None]:
    def delete(stack: cfn_models.Stack) -> None:
        try:
            original(stack)
        except Exception as exc:
            stack.status = "DELETE_FAILED"
            stack._add_stack_event("DELETE_FAILED", resource_status_reason=describe(exc))

    return delete


def keeping_failed_deletes(original: Callable[..., None]) -> Callable[..., None]:
    """A stack whose delete failed stays visible by name (moto would drop it from the list)."""

    def delete_stack(backend: cfn_models.CloudFormationBackend, name_or_stack_id: str) -> None:
        original(backend, name_or_stack_id)
        for stack_id, stack in list(backend.deleted_stacks.items()):
            if stack.status == "DELETE_FAILED" and name_or_stack_id in (stack.name, stack_id):
                backend.stacks[stack_id] = backend.deleted_stacks.pop(stack_id)

    return delete_stack


def change_set_apply(change_set: cfn_models.ChangeSet) -> None:
    """Apply, then give the stack the change set's template and rebuild its outputs (moto keeps none)."""
    stack = change_set.stack
    stack.resource_map.update(change_set.template_dict, change_set.parameters)
    stack.template = change_set.template
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.output_map = stack._create_output_map()


def failing_execute_change_set(original: Callable[..., None]) -> Callable[..., None]:
    def execute_change_set(
        backend: cfn_models.CloudFormationBackend, change_set_name: str, stack_name: str | None = None
    ) -> None:
        change_set = backend.describe_change_set(change_set_name)
        if change_set is None:
            raise ValidationError(stack_name)
        stack = change_set.stack
        previous_template = stack.template
        previous_parameters = dict(stack.resource_map.input_parameters)
        try:
            original(backend, change_set_name, stack_name)
        except Exception as exc:
            change_set.execution_status = "EXECUTE_FAILED"
            if change_set.change_set_type == "CREATE":
                _roll_back_create(stack, describe(exc))
            else:
                _roll_back_update(stack, describe(exc), previous_template, previous_parameters)

    return execute_change_set


def validating_template(original: Callable[..., Any]) -> Callable[..., Any]:
    """Strict check first; an unexpected error while parsing the template becomes a 400, never a 500.
    (moto's backend takes the template by keyword.)"""

    def method(backend: Any, *args: Any, **kwargs: Any) -> Any:
        template = kwargs.get("template")
        check_template(template or "")
        try:
            if template:
                parsed = template if isinstance(template, dict) else cfn_models.Stack.parse_template(template)
                record_imported_network(backend.account_id, backend.region_name, parsed)
                record_imported_zones(backend.account_id, parsed)
            return original(backend, *args, **kwargs)
        except (ServiceException, _RESTError):
            raise
        except Exception as exc:
            raise ValidationError(message=f"Template error: {describe(exc)}") from exc

    return method


def resolve_update_parameters(
    backend: Any, instance: Any, incoming_params: list[dict[str, str]]
) -> dict[str, str]:
    """moto's, except that UsePreviousValue also covers a parameter that took its default.

    The previous value is the previous *input* (for an SSM-typed parameter, the parameter name, resolved
    again), as on AWS; moto raises KeyError and the SDK retries for ~49 s.
    """
    template = getattr(instance, "template_dict", None) or {}
    previous = {name: spec.get("Default") for name, spec in (template.get("Parameters") or {}).items()}
    previous.update(instance.parameters or {})
    resolved = {p["ParameterKey"]: p["ParameterValue"] for p in incoming_params if "ParameterValue" in p}
    for parameter in incoming_params:
        if parameter.get("UsePreviousValue", False):
            key = parameter["ParameterKey"]
            if previous.get(key) is None:
                raise ValidationError(message=f"Parameter {key} has no previous value to use")
            resolved[key] = previous[key]
    return resolved


def deleting_resource(original: Callable[..., None]) -> Callable[..., None]:
    def _delete_resource(resource_map: Any, parsed_resource: Any, resource_json: dict[str, Any]) -> None:
        deleter = DELETERS.get(resource_json.get("Type", ""))
        if deleter is None:
            original(resource_map, parsed_resource, resource_json)
        else:
            deleter(parsed_resource, resource_map._account_id, resource_map._region_name)

    return _delete_resource


def references(node: Any) -> set[str]:
    """Logical ids a resource body points at: Ref, Fn::GetAtt, ${X} / ${X.Attr} in Fn::Sub, DependsOn."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value.split(".", 1)[0] if isinstance(value, str) else value[0])
            elif key == "Fn::Sub":
                template = value[0] if isinstance(value, list) else value
                if isinstance(template, str):
                    found.update(
                        name.split(".", 1)[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", template)
                    )
                found |= references(value)
            elif key == "DependsOn":
                found.update([value] if isinstance(value, str) else value)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def dependency_order(resources: dict[str, Any]) -> list[str]:
    """Logical ids, each after every resource it references (template order otherwise)."""
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in ordered or logical_id in visiting:
            return
        visiting.add(logical_id)
        for dependency in sorted(references(resources[logical_id]) & resources.keys()):
            visit(dependency)
        visiting.discard(logical_id)
        ordered.append(logical_id)

    for logical_id in resources:
        visit(logical_id)
    return ordered


def _physical_id(resource: Any) -> Any:
    return getattr(resource, "physical_resource_id", None)


def update_resource_map(
    resource_map: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None
) -> None:
    """moto's ResourceMap.update, with the Modify phase in dependency order and propagated.

    moto updates modified resources in template order and only those whose text changed. On AWS a
    resource whose Ref/GetAtt target was replaced (a task definition's new revision, say) is updated too,
    after its target: a service then points at the new revision, not at a deregistered one.
    """
    diff = resource_map.build_resource_diff(template, parameters)
    removed = set(diff["Remove"])
    for logical_id in reversed(dependency_order(resource_map._resource_json_map)):
        if logical_id not in removed:
            continue
        resource_json = resource_map._resource_json_map[logical_id]
        if logical_id in resource_map._parsed_resources:
            resource_map._delete_resource(resource_map._parsed_resources.pop(logical_id), resource_json)
    resource_map._template = template
    if parameters:
        resource_map.input_parameters = parameters
    resource_map.load_mapping()
    resource_map.load_parameters()
    resource_map.load_conditions()
    resource_map._resource_json_map = template["Resources"]
    for logical_id in diff["Add"]:
        _ = resource_map[logical_id]
    modified = set(diff["Modify"])
    replaced: set[str] = set(diff["Add"])
    for logical_id in dependency_order(template["Resources"]):
        if logical_id not in modified and not references(template["Resources"][logical_id]) & replaced:
            continue
        if logical_id not in resource_map._parsed_resources:
            continue
        before = _physical_id(resource_map._parsed_resources[logical_id])
        updated = parsing.parse_and_update_resource(
            logical_id,
            template["Resources"][logical_id],
            resource_map,
            account_id=resource_map._account_id,
            region_name=resource_map._region_name,
        )
        if updated is None:
            raise TemplateError(f"{logical_id}: the local cloud cannot update this resource")
        resource_map._parsed_resources[logical_id] = updated
        if _physical_id(updated) != before:
            replaced.add(logical_id)


def parse_ssm_parameter(resource_map: Any, value: str, value_type: str) -> Any:
    """moto's, with a clear error when the parameter does not exist (moto fails with AttributeError)."""
    parameter = ssm_backends[resource_map._account_id][resource_map._region_name].get_parameter(value)
    if parameter is None:
        hint = (
            " (the CDK bootstrap stack is not deployed: run `cdk bootstrap`)"
            if "cdk-bootstrap" in value
            else ""
        )
        raise ValidationError(
            message=f"Unable to fetch parameters [{value}] from parameter store for this account{hint}"
        )
    if value_type.find("List") > 0:
        return parameter.value.split(",")
    return parameter.value


def set_strict(strict: bool) -> None:
    """Strict mode on or off (the emulator's setting; it may change while the process runs)."""
    _state["strict"] = strict


def model_list(original: Callable[[], list[type[CloudFormationModel]]]) -> Callable[[], list[type[Any]]]:
    """moto's model list (its own models only, uncached) followed by devenv's: later entries win."""
    moto_models = original.__wrapped__  # type: ignore[attr-defined]

    @functools.lru_cache
    def get_model_list() -> list[type[Any]]:
        return [m for m in moto_models() if m.__module__.startswith("moto.")] + list(MODELS)

    return get_model_list
