"""Reading a synthesized CloudFormation template: its resources and which of them a deploy must create."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv.errors import UsageError


@dataclass(frozen=True)
class TemplateResource:
    logical_id: str
    type: str
    condition: str | None


def load_template(path: Path) -> dict[str, Any]:
    """A JSON or YAML template (YAML short forms such as !Ref become their long forms)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(
            f"no template at {path}", "synthesize the app first (devenv deploy does it)"
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        import yaml

        try:
            document = yaml.load(text, Loader=_template_loader())  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise UsageError(
                f"{path} is neither a JSON nor a YAML template: {exc}", "re-run the synth"
            ) from None
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise UsageError(f"{path} has no Resources section", "check the CDK app synthesizes a stack")
    return document


@functools.cache
def _template_loader() -> Any:
    """A safe YAML loader that reads CloudFormation's short forms (`!Ref X` is `{"Ref": "X"}`, `!GetAtt A.B`
    is `{"Fn::GetAtt": ["A", "B"]}`, `!Sub ...` is `{"Fn::Sub": ...}`), with libyaml where it is built.
    Written here rather than borrowed from moto, whose import costs the host ~2 s (the bootstrap template
    is YAML)."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def intrinsic(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}

    loader: Any = type("TemplateLoader", (base,), {})
    loader.add_multi_constructor("!", intrinsic)
    return loader


def resources(template: Mapping[str, Any]) -> list[TemplateResource]:
    return [
        TemplateResource(logical_id, body.get("Type", ""), body.get("Condition"))
        for logical_id, body in template.get("Resources", {}).items()
    ]


class UnknownCondition(Exception):
    """A condition uses something this evaluator does not know; the resource is then not checked."""


def _value(
    node: Any, values: Mapping[str, Any], conditions: Mapping[str, Any], template: Mapping[str, Any]
) -> Any:
    if isinstance(node, dict) and "Ref" in node:
        if node["Ref"] not in values:
            raise UnknownCondition(node["Ref"])
        return values[node["Ref"]]
    if isinstance(node, dict) and "Condition" in node:
        return condition_holds(node["Condition"], values, template)
    if isinstance(node, dict):
        return _evaluate(node, values, conditions, template)
    return node


def _evaluate(
    node: Any, values: Mapping[str, Any], conditions: Mapping[str, Any], template: Mapping[str, Any]
) -> bool:
    if isinstance(node, bool):
        return node
    if not isinstance(node, dict) or len(node) != 1:
        raise UnknownCondition(str(node))
    ((function, arguments),) = node.items()
    if function == "Fn::Equals":
        left, right = (_value(a, values, conditions, template) for a in arguments)
        return str(left) == str(right)
    if function == "Fn::Not":
        return not _evaluate_argument(arguments[0], values, conditions, template)
    if function == "Fn::And":
        return all(_evaluate_argument(a, values, conditions, template) for a in arguments)
    if function == "Fn::Or":
        return any(_evaluate_argument(a, values, conditions, template) for a in arguments)
    raise UnknownCondition(function)


def _evaluate_argument(
    node: Any, values: Mapping[str, Any], conditions: Mapping[str, Any], template: Mapping[str, Any]
) -> bool:
    if isinstance(node, dict) and set(node) == {"Condition"}:
        return condition_holds(node["Condition"], values, template)
    return _evaluate(node, values, conditions, template)


def condition_holds(name: str, values: Mapping[str, Any], template: Mapping[str, Any]) -> bool:
    """Evaluate a named condition with parameter and pseudo-parameter values (raises UnknownCondition)."""
    conditions = template.get("Conditions", {})
    if name not in conditions:
        raise UnknownCondition(name)
    return _evaluate(conditions[name], values, conditions, template)


def expected_resources(
    template: Mapping[str, Any], parameters: Mapping[str, str], region: str, account: str, stack_name: str
) -> tuple[list[TemplateResource], list[TemplateResource]]:
    """(resources the stack must hold, resources whose condition could not be evaluated)."""
    values: dict[str, Any] = {
        name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()
    }
    values.update(parameters)
    values.update(
        {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::StackName": stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }
    )
    required, unknown = [], []
    for resource in resources(template):
        if resource.condition is None:
            required.append(resource)
            continue
        try:
            if condition_holds(resource.condition, values, template):
                required.append(resource)
        except UnknownCondition:
            unknown.append(resource)
    return required, unknown
