"""`devenv deploy/destroy` for both targets: the same cloud assembly, the same CDK CLI, then a real check."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv.errors import DevenvError
from devenv.targets import cdk, leaks, local

Say = Callable[[str], None]


@dataclass(frozen=True)
class Inputs:
    """What a deploy is made of: where state lives, the CDK app, the props, extra context, the region."""

    state_dir: Path
    stack_dir: Path
    props_file: Path | None
    context: Mapping[str, Any]
    region: str


def _tail(output: str, lines: int = 25) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])


def deploy_local(
    inputs: Inputs,
    endpoint: str,
    say: Say,
    env: Mapping[str, str] | None = None,
    probe_path: str = "/moto-api/",
) -> local.StackReport:
    """Synthesize once, bootstrap the emulator when needed, `cdk deploy --method=direct`, verify.

    `env` overrides the variables that point the CLI at the emulator (LocalStack's differ).
    """
    local.require_emulator(endpoint, probe_path)
    assembly = cdk.synthesize(
        inputs.state_dir, inputs.stack_dir, inputs.props_file, inputs.context, on_event=say
    )
    env = {**cdk.local_env(endpoint, inputs.region), **(env or {})}
    if local.bootstrap_version(endpoint, inputs.region) is None:
        account = local.client("sts", endpoint, inputs.region).get_caller_identity()["Account"]
        say(f"bootstrapping the local cloud (aws://{account}/{inputs.region})")
        code, output = cdk.run_cli(
            cdk.bootstrap_arguments(assembly, account, inputs.region), env, inputs.stack_dir, on_line=say
        )
        if code != 0 or local.bootstrap_version(endpoint, inputs.region) is None:
            raise local.DeployFailedError(
                f"cdk bootstrap failed (exit {code}):\n{_tail(output)}", "see the emulator log"
            )
    say(f"cdk deploy {cdk.STACK_NAME} --method=direct -> {endpoint}")
    code, output = cdk.run_cli(cdk.deploy_arguments(assembly, "direct"), env, inputs.stack_dir, on_line=say)
    try:
        report = local.verify_stack(endpoint, inputs.region, cdk.STACK_NAME, assembly.template(), {})
    except local.DeployFailedError as exc:
        raise local.DeployFailedError(
            f"{exc.message}\n(cdk deploy exited {code}; its last lines:)\n{_tail(output)}", exc.hint
        ) from None
    if code != 0:
        raise local.DeployFailedError(
            f"cdk deploy exited {code} although the stack is {report.status}:\n{_tail(output)}",
            "see the output above",
        )
    report.assembly = str(assembly.directory)
    return report


def destroy_local(inputs: Inputs, endpoint: str, say: Say) -> dict[str, Any]:
    """Delete the stack from the emulator, then check through the APIs that nothing it held remains."""
    say(f"deleting {cdk.STACK_NAME} from the local cloud")
    held = local.delete_stack(endpoint, cdk.STACK_NAME, inputs.region)
    remaining = leaks.leaked(lambda service: local.client(service, endpoint, inputs.region), held)
    if remaining:
        raise local.DeployFailedError(
            f"{len(remaining)} resource(s) outlived the stack: {', '.join(remaining)}",
            "report this emulator bug",
        )
    return {"stack": cdk.STACK_NAME, "deleted": bool(held), "resources": len(held), "leaked": []}


def aws_env(profile: str | None, region: str | None) -> dict[str, str]:
    """The user's own AWS configuration; no emulator endpoint may leak into it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    if profile:
        env["AWS_PROFILE"] = profile
    if region:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    return env


def aws_session(profile: str | None, region: str | None) -> Any:
    import boto3  # loaded on use (see devenv.targets.local.client)
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

    try:
        session = boto3.Session(profile_name=profile, region_name=region or None)
        identity = session.client("sts").get_caller_identity()
    except ProfileNotFound as exc:
        raise DevenvError(
            f"AWS profile not found: {exc}", "pass --profile with a profile from ~/.aws/config"
        ) from None
    except NoCredentialsError:
        raise DevenvError("no AWS credentials found", "log in (aws sso login) or pass --profile") from None
    except (ClientError, BotoCoreError, ValueError) as exc:
        raise DevenvError(f"AWS rejected the credentials: {exc}", "refresh your credentials") from None
    if session.region_name is None:
        raise DevenvError("no AWS region configured", "pass --region or set AWS_REGION")
    session.identity = identity
    return session


def diff_aws(inputs: Inputs, profile: str | None, say: Say) -> str:
    assembly = cdk.synthesize(
        inputs.state_dir, inputs.stack_dir, inputs.props_file, inputs.context, on_event=say
    )
    code, output = cdk.run_cli(
        cdk.diff_arguments(assembly), aws_env(profile, inputs.region), inputs.stack_dir
    )
    if code not in (0, 1):  # cdk diff exits 1 when there are differences (with --fail)
        raise local.DeployFailedError(
            f"cdk diff failed (exit {code}):\n{_tail(output)}", "check your credentials"
        )
    return output


def deploy_aws(inputs: Inputs, profile: str | None, say: Say) -> local.StackReport:
    """The same assembly and CLI as local, with the user's credentials; verified through CloudFormation."""
    session = aws_session(profile, inputs.region)
    assembly = cdk.synthesize(
        inputs.state_dir, inputs.stack_dir, inputs.props_file, inputs.context, on_event=say
    )
    code, output = cdk.run_cli(
        cdk.deploy_arguments(assembly, "change-set"),
        aws_env(profile, inputs.region),
        inputs.stack_dir,
        on_line=say,
    )
    report = local.verify_with(
        session.client("cloudformation"),
        session.identity["Account"],
        session.region_name,
        cdk.STACK_NAME,
        assembly.template(),
        {},
    )
    if code != 0:
        raise local.DeployFailedError(f"cdk deploy exited {code}:\n{_tail(output)}", "see the output above")
    return report


def destroy_aws(inputs: Inputs, profile: str | None, say: Say) -> dict[str, Any]:
    aws_session(profile, inputs.region)
    assembly = cdk.synthesize(
        inputs.state_dir, inputs.stack_dir, inputs.props_file, inputs.context, on_event=say
    )
    code, output = cdk.run_cli(
        cdk.destroy_arguments(assembly), aws_env(profile, inputs.region), inputs.stack_dir, on_line=say
    )
    if code != 0:
        raise local.DeployFailedError(f"cdk destroy exited {code}:\n{_tail(output)}", "see the output above")
    return {"stack": cdk.STACK_NAME, "deleted": True}
