"""The local target: the emulator (devenv.emulator) reached through the AWS API, like any client would.

`deploy_template` is the warm path `devenv up` uses when the cloud assembly is unchanged: CloudFormation
CreateStack/UpdateStack of the synthesized template, then the same verification `devenv deploy` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import urlopen

from botocore.exceptions import BotoCoreError, ClientError

from devenv.errors import DevenvError, NotRunningError
from devenv.targets import templates

CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
BOOTSTRAP_STACK = "CDKToolkit"


class DeployFailedError(DevenvError):
    """The stack did not reach a complete state, or lacks resources its template declares."""

    exit_code = 8


def endpoint_for(port: int) -> str:
    """The URL the SDKs and the CDK CLI use: literal `localhost`, for path-style S3 template URLs."""
    return f"http://localhost:{port}"


def client(service: str, endpoint: str, region: str) -> Any:
    import boto3  # loaded on use: every `devenv` command imports this module, few need an SDK
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=120),
        **CREDENTIALS,
    )


def require_emulator(endpoint: str, probe_path: str = "/moto-api/") -> None:
    """Fail with a clear message when no emulator answers at `endpoint`."""
    probe = endpoint.rstrip("/").replace("//localhost", "//127.0.0.1") + probe_path
    try:
        with urlopen(probe, timeout=2) as response:
            if response.status == 200:
                return
    except (URLError, OSError):
        pass
    raise NotRunningError(
        f"the local cloud is not answering at {endpoint}",
        "start it with `devenv up` first (or set emulator_port to where it runs)",
    )


def ecs_service_events(endpoint: str, region: str) -> dict[str, list[dict[str, str]]]:
    """Each ECS service's events (newest first) as `describe_services` returns them, by service name.
    Raises NotRunningError when the emulator does not answer."""
    ecs = client("ecs", endpoint, region)
    found: dict[str, list[dict[str, str]]] = {}
    try:
        for cluster in ecs.list_clusters()["clusterArns"]:
            for page in ecs.get_paginator("list_services").paginate(
                cluster=cluster, PaginationConfig={"PageSize": 10}
            ):
                if not page["serviceArns"]:
                    continue
                for service in ecs.describe_services(cluster=cluster, services=page["serviceArns"])[
                    "services"
                ]:
                    found[service["serviceName"]] = [
                        {"id": e["id"], "createdAt": e["createdAt"].isoformat(), "message": e["message"]}
                        for e in service.get("events", [])
                    ]
    except (BotoCoreError, ClientError) as exc:
        raise NotRunningError(
            f"could not read the ECS service events from {endpoint}: {exc}", "check `devenv logs emulator`"
        ) from None
    return found


@dataclass
class StackReport:
    """What a deploy produced: the stack's status, outputs and resources, checked against the template."""

    stack_name: str
    status: str
    outputs: dict[str, str]
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    unchecked: list[str] = field(default_factory=list)
    assembly: str | None = None
    unchanged: bool = False  # the target already held this cloud assembly: nothing was deployed

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack_name,
            "status": self.status,
            "outputs": self.outputs,
            "resources": len(self.resources),
            "unchecked_conditional_resources": self.unchecked,
            "assembly": self.assembly,
            "unchanged": self.unchanged,
        }


def failure_reasons(cfn: Any, stack_name: str) -> list[str]:
    """The *_FAILED events of the stack's latest operation, oldest first."""
    try:
        events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
    except ClientError:
        return []
    return [
        f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason') or e['ResourceStatus']}"
        for e in events
        if e["ResourceStatus"].endswith("_FAILED") and e.get("ResourceStatusReason")
    ]


def stack_status(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        return cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def wait_for_stack(cfn: Any, stack_name: str, timeout_s: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        stack = stack_status(cfn, stack_name)
        if stack is None:
            raise DeployFailedError(f"stack {stack_name} vanished while deploying")
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        if time.monotonic() > deadline:
            raise DeployFailedError(
                f"stack {stack_name} still {stack['StackStatus']} after {timeout_s:.0f} s"
            )
        time.sleep(0.2)


def verify_stack(
    endpoint: str, region: str, stack_name: str, template: Mapping[str, Any], parameters: Mapping[str, str]
) -> StackReport:
    """Never trust an exit code: the stack must be complete and hold every resource of its template."""
    account = client("sts", endpoint, region).get_caller_identity()["Account"]
    return verify_with(
        client("cloudformation", endpoint, region), account, region, stack_name, template, parameters
    )


def verify_with(
    cfn: Any,
    account: str,
    region: str,
    stack_name: str,
    template: Mapping[str, Any],
    parameters: Mapping[str, str],
) -> StackReport:
    """The check behind verify_stack, for any CloudFormation client (the emulator's or AWS's)."""
    stack = stack_status(cfn, stack_name)
    if stack is None:
        raise DeployFailedError(f"stack {stack_name} does not exist after the deploy")
    status = stack["StackStatus"]
    if status not in TERMINAL_OK:
        reasons = failure_reasons(cfn, stack_name)
        raise DeployFailedError(
            f"stack {stack_name} is {status}" + (": " + "; ".join(reasons) if reasons else ""),
            "fix the resource named above and deploy again",
        )
    required, unknown = templates.expected_resources(template, parameters, region, account, stack_name)
    paginator = cfn.get_paginator("list_stack_resources")
    present = {
        r["LogicalResourceId"]: {"type": r["ResourceType"], "physical_id": r.get("PhysicalResourceId", "")}
        for page in paginator.paginate(StackName=stack_name)
        for r in page["StackResourceSummaries"]
    }
    missing = [f"{r.logical_id} ({r.type})" for r in required if r.logical_id not in present]
    if missing:
        raise DeployFailedError(
            f"stack {stack_name} is {status} but {len(missing)} template resource(s) do not exist: {', '.join(missing)}",
            "the emulator skipped them: run `devenv parity` to see which types are unsupported",
        )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
    declared = template.get("Outputs", {})
    lost = sorted(key for key in declared if key not in outputs and "Condition" not in declared[key])
    if lost:
        raise DeployFailedError(
            f"stack {stack_name} lacks outputs {', '.join(lost)}", "report this emulator bug"
        )
    return StackReport(stack_name, status, outputs, present, [r.logical_id for r in unknown])


def bootstrap_version(endpoint: str, region: str) -> int | None:
    """The CDK bootstrap version the emulator holds, or None when it was never bootstrapped."""
    try:
        value = client("ssm", endpoint, region).get_parameter(Name=BOOTSTRAP_VERSION_PARAMETER)["Parameter"][
            "Value"
        ]
    except ClientError:
        return None
    return int(value)


def needs_bootstrap(template: Mapping[str, Any]) -> bool:
    return any(
        str(spec.get("Default", "")).startswith("/cdk-bootstrap/")
        for spec in template.get("Parameters", {}).values()
    )


def bootstrap_template(stack_dir: Path) -> Path:
    """The CDK CLI's own bootstrap template, from the CLI pinned in the app's package.json."""
    return stack_dir / "node_modules/aws-cdk/lib/api/bootstrap/bootstrap-template.yaml"


def ensure_bootstrapped(
    endpoint: str,
    region: str,
    stack_dir: Path | None,
    on_event: Callable[[str], None] | None = None,
) -> bool:
    """Deploy the CDK CLI's bootstrap template as CDKToolkit when the emulator lacks it; True if it did."""
    if bootstrap_version(endpoint, region) is not None:
        return False
    if stack_dir is None:
        raise DeployFailedError(
            "the template needs a bootstrapped environment and the emulator is not bootstrapped",
            "deploy the CDK app with `devenv deploy --target local` (it bootstraps the emulator)",
        )
    template = bootstrap_template(stack_dir)
    if not template.is_file():
        raise DeployFailedError(
            f"the emulator is not bootstrapped and the CDK bootstrap template is missing ({template})",
            f"run `npm ci` in {stack_dir} to install the pinned CDK CLI",
        )
    deploy_template_report(endpoint, template, BOOTSTRAP_STACK, region=region, on_event=on_event)
    return True


def deploy_template(
    endpoint: str,
    template_path: Path,
    stack_name: str,
    parameters: Mapping[str, str] | None = None,
    region: str = "us-east-1",
    on_event: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Create or update `stack_name` from a template file through CloudFormation; returns its outputs.

    A stack left in ROLLBACK_COMPLETE by an earlier failed create is deleted first, as AWS requires.
    Raises DeployFailedError with the failing resources' reasons.
    """
    return deploy_template_report(endpoint, template_path, stack_name, parameters, region, on_event).outputs


def deploy_template_report(
    endpoint: str,
    template_path: Path,
    stack_name: str,
    parameters: Mapping[str, str] | None = None,
    region: str = "us-east-1",
    on_event: Callable[[str], None] | None = None,
    stack_dir: Path | None = None,
) -> StackReport:
    """`deploy_template`'s report; `stack_dir`, the CDK app whose pinned CLI holds the bootstrap template,
    is needed only by a template that asks for a bootstrapped environment the emulator lacks."""
    require_emulator(endpoint)
    say = on_event or (lambda message: None)
    template = templates.load_template(template_path)
    body = template_path.read_text()
    params = dict(parameters or {})
    declared = template.get("Parameters", {})
    if needs_bootstrap(template) and ensure_bootstrapped(endpoint, region, stack_dir, on_event):
        say("bootstrapped the local cloud (CDKToolkit)")
    cfn = client("cloudformation", endpoint, region)
    existing = stack_status(cfn, stack_name)
    if existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        say(f"deleting {stack_name} left in ROLLBACK_COMPLETE")
        cfn.delete_stack(StackName=stack_name)
        existing = None
    try:
        if existing is None:
            say(f"creating {stack_name} ({len(template['Resources'])} resources)")
            cfn.create_stack(
                StackName=stack_name,
                TemplateBody=body,
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            )
        else:
            say(f"updating {stack_name}")
            update_parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()]
            update_parameters += [
                {"ParameterKey": k, "UsePreviousValue": True}  # type: ignore[dict-item]
                for k in declared
                if k not in params and k in {p["ParameterKey"] for p in existing.get("Parameters", [])}
            ]
            cfn.update_stack(
                StackName=stack_name,
                TemplateBody=body,
                Parameters=update_parameters,
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            )
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if "No updates are to be performed" not in message:
            raise DeployFailedError(
                f"CloudFormation refused the template: {message}", "fix the template"
            ) from None
        say("no changes")
    except BotoCoreError as exc:
        raise DeployFailedError(f"cannot reach the local cloud: {exc}", "check `devenv status`") from None
    wait_for_stack(cfn, stack_name)
    return verify_stack(endpoint, region, stack_name, template, params)


def delete_stack(endpoint: str, stack_name: str, region: str = "us-east-1") -> list[dict[str, str]]:
    """Delete the stack and wait; returns the resources it held (for a leak check)."""
    require_emulator(endpoint)
    cfn = client("cloudformation", endpoint, region)
    if stack_status(cfn, stack_name) is None:
        return []
    held = [
        {
            "logical_id": r["LogicalResourceId"],
            "type": r["ResourceType"],
            "physical_id": r.get("PhysicalResourceId", ""),
        }
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name)
        for r in page["StackResourceSummaries"]
    ]
    try:
        cfn.delete_stack(StackName=stack_name)
    except ClientError as exc:
        raise DeployFailedError(
            f"deleting {stack_name} failed: {exc}", "see the emulator log (devenv logs emulator)"
        ) from None
    remaining = stack_status(cfn, stack_name)
    if remaining is not None and remaining["StackStatus"] != "DELETE_COMPLETE":
        raise DeployFailedError(
            f"stack {stack_name} is {remaining['StackStatus']} after delete: "
            + "; ".join(failure_reasons(cfn, stack_name)),
            "see the emulator log (devenv logs emulator)",
        )
    return held
