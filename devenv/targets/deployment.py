"""`devenv deploy/destroy` for both targets: the same cloud assembly, the same CDK CLI, then a real check."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

from devenv.errors import DevenvError
from devenv.realize import control_client
from devenv.runtime.progress import Progress
from devenv.targets import cdk, leaks, local

# The steps every deploy reports (devenv.runtime.progress): `up` adds its own around them. A step that
# raises is left running: the caller marks it failed (Progress.fail_running) as it reports the error.
DEPLOY_STEPS = ("synth", "bootstrap", "deploy")


@dataclass(frozen=True)
class Inputs:
    """What a deploy is made of: where assemblies are cached, the CDK app, the props, extra context, the
    region, and the log the CDK CLI's output goes to."""

    state_dir: Path
    stack_dir: Path
    props_file: Path | None
    context: Mapping[str, Any]
    region: str
    cdk_log: Path
    stack: str = cdk.STACK_NAME  # which stack of the app: the proxy's, or the load generator's


def synth(inputs: Inputs, progress: Progress) -> cdk.Assembly:
    """The cloud assembly (cached when its inputs are unchanged), as the `synth` step."""
    progress.start("synth", "synthesizing the CDK app")
    assembly = cdk.synthesize(inputs.state_dir, inputs.stack_dir, inputs.props_file, inputs.context)
    progress.done("synth", f"{'cached' if assembly.cached else 'synthesized'} ({assembly.digest})")
    return assembly


def cdk_deploy(
    inputs: Inputs, assembly: cdk.Assembly, method: str, env: Mapping[str, str], progress: Progress
) -> tuple[dict[str, Any], cdk.CliRun, int]:
    """The `deploy` step's `cdk deploy --method=<method>` of the stack, its resources counted as they come:
    the stack's template, the run, and how many resources the template has."""
    template = assembly.template(inputs.stack)
    counter = cdk.ResourceCounter(
        len(template.get("Resources", {})), lambda detail: progress.update("deploy", detail)
    )
    progress.start("deploy", f"cdk deploy {inputs.stack} --method={method}")
    run = cdk.run(
        cdk.deploy_arguments(assembly, method, stack=inputs.stack),
        env,
        inputs.stack_dir,
        inputs.cdk_log,
        on_line=counter,
    )
    return template, run, counter.total


def saved_cloud(endpoint: str) -> dict[str, Any] | None:
    """The emulator's word on its saved local cloud (devenv.emulator.saved_cloud), or None from an
    emulator without devenv's control API (LocalStack answers 404)."""
    try:
        return control_client.saved_cloud(endpoint)
    except HTTPError as exc:
        if exc.code == 404:
            return None
        raise local.DeployFailedError(
            f"the emulator could not say what it holds: HTTP {exc.code}", "see `devenv logs emulator`"
        ) from None
    except OSError as exc:
        raise local.DeployFailedError(
            f"the emulator did not answer at {endpoint}: {exc}", "see `devenv logs emulator`"
        ) from None


def unchanged(
    endpoint: str, region: str, stack: str, assembly: cdk.Assembly, saved: dict[str, Any] | None
) -> local.StackReport | None:
    """The verified `stack` when the emulator holds it deployed (complete) from exactly this assembly's
    template of it: no deploy is needed. None when it holds another template of it, none, or cannot say."""
    if saved is None or (saved.get("stacks") or {}).get(stack) != assembly.template_digest(stack):
        return None
    cfn = local.client("cloudformation", endpoint, region)
    deployed = local.stack_status(cfn, stack)
    if deployed is None or deployed["StackStatus"] not in local.TERMINAL_OK:
        return None
    report = local.verify_stack(endpoint, region, stack, assembly.template(stack), {})
    report.assembly = str(assembly.directory)
    report.unchanged = True
    return report


def record_deployed(endpoint: str, stack: str, assembly: cdk.Assembly) -> None:
    """Tell the emulator which template of `stack` it now holds (it saves the local cloud at once)."""
    try:
        control_client.deployed(endpoint, stack, assembly.template_digest(stack))
    except OSError as exc:
        detail = exc.read().decode(errors="replace") if isinstance(exc, HTTPError) else str(exc)
        raise local.DeployFailedError(
            f"the stack is deployed but the emulator could not save the local cloud: {detail}",
            "see `devenv logs emulator`; the next `devenv up` deploys again",
        ) from None


def deploy_local(
    inputs: Inputs,
    endpoint: str,
    progress: Progress,
    env: Mapping[str, str] | None = None,
    probe_path: str = "/moto-api/",
    assembly: cdk.Assembly | None = None,
) -> local.StackReport:
    """Synthesize once (unless given the assembly), bootstrap the emulator when needed, `cdk deploy
    --method=direct`, verify.

    `env` overrides the variables that point the CLI at the emulator (LocalStack's differ).
    """
    local.require_emulator(endpoint, probe_path)
    assembly = assembly or synth(inputs, progress)
    saved = saved_cloud(endpoint)
    same = unchanged(endpoint, inputs.region, inputs.stack, assembly, saved)
    if same is not None:
        progress.done("bootstrap", "already bootstrapped")
        digest = assembly.template_digest(inputs.stack)
        progress.done("deploy", f"unchanged: the local cloud holds {inputs.stack} of template {digest}")
        return same
    env = {**cdk.local_env(endpoint, inputs.region), **(env or {})}
    progress.start("bootstrap", "checking the CDK bootstrap stack")
    if local.bootstrap_version(endpoint, inputs.region) is None:
        account = local.client("sts", endpoint, inputs.region).get_caller_identity()["Account"]
        progress.update("bootstrap", f"cdk bootstrap aws://{account}/{inputs.region}")
        run = cdk.run(
            cdk.bootstrap_arguments(assembly, account, inputs.region),
            env,
            inputs.stack_dir,
            inputs.cdk_log,
            on_line=cdk.ResourceCounter(0, lambda detail: progress.update("bootstrap", detail)),
        )
        if run.exit_code != 0 or local.bootstrap_version(endpoint, inputs.region) is None:
            raise local.DeployFailedError(run.failure("cdk bootstrap failed"), "see the emulator log")
        progress.done("bootstrap", f"{local.BOOTSTRAP_STACK} created")
    else:
        progress.done("bootstrap", "already bootstrapped")
    template, run, total = cdk_deploy(inputs, assembly, "direct", env, progress)
    try:
        report = local.verify_stack(endpoint, inputs.region, inputs.stack, template, {})
    except local.DeployFailedError as exc:
        if run.exit_code == 0:
            raise
        raise local.DeployFailedError(
            f"{exc.message}\n{run.failure('cdk deploy failed')}", exc.hint
        ) from None
    if run.exit_code != 0:
        raise local.DeployFailedError(
            run.failure(f"cdk deploy failed although the stack is {report.status}"), "see the log named above"
        )
    if saved is not None:
        record_deployed(endpoint, inputs.stack, assembly)
    progress.done("deploy", f"resources {len(report.resources)}/{total}")
    report.assembly = str(assembly.directory)
    return report


def destroy_local(inputs: Inputs, endpoint: str) -> dict[str, Any]:
    """Delete the stack from the emulator, then check through the APIs that nothing it held remains."""
    held = local.delete_stack(endpoint, inputs.stack, inputs.region)
    remaining = leaks.leaked(lambda service: local.client(service, endpoint, inputs.region), held)
    if remaining:
        raise local.DeployFailedError(
            f"{len(remaining)} resource(s) outlived the stack: {', '.join(remaining)}",
            "report this emulator bug",
        )
    return {"stack": inputs.stack, "deleted": bool(held), "resources": len(held), "leaked": []}


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


# What `cdk diff` prints, exiting 0, when it cannot read the deployed stack (no credentials, no account).
CDK_DIFF_REFUSALS = ("Unable to resolve AWS account",)


def diff_aws(inputs: Inputs, profile: str | None, progress: Progress) -> str:
    aws_session(profile, inputs.region)  # no credentials: said now, not after a minute of synth
    assembly = synth(inputs, progress)
    run = cdk.run(
        cdk.diff_arguments(assembly), aws_env(profile, inputs.region), inputs.stack_dir, inputs.cdk_log
    )
    if run.exit_code not in (0, 1):  # cdk diff exits 1 when there are differences (with --fail)
        raise local.DeployFailedError(run.failure("cdk diff failed"), "check your credentials")
    refusal = next((line for line in run.lines if line.startswith(CDK_DIFF_REFUSALS)), None)
    if refusal is not None:  # the CLI exits 0 after these: it printed no diff at all
        raise local.DeployFailedError(
            f"cdk diff could not compare with AWS: {refusal}",
            f"log in (aws sso login) or pass --profile; the whole output is in {inputs.cdk_log}",
        )
    return "\n".join(run.lines)


def deploy_aws(inputs: Inputs, profile: str | None, progress: Progress) -> local.StackReport:
    """The same assembly and CLI as local, with the user's credentials; verified through CloudFormation."""
    session = aws_session(profile, inputs.region)
    assembly = synth(inputs, progress)
    template, run, total = cdk_deploy(
        inputs, assembly, "change-set", aws_env(profile, inputs.region), progress
    )
    report = local.verify_with(
        session.client("cloudformation"),
        session.identity["Account"],
        session.region_name,
        inputs.stack,
        template,
        {},
    )
    if run.exit_code != 0:
        raise local.DeployFailedError(run.failure("cdk deploy failed"), "see the log named above")
    progress.done("deploy", f"resources {len(report.resources)}/{total}")
    return report


def destroy_aws(inputs: Inputs, profile: str | None, progress: Progress) -> dict[str, Any]:
    aws_session(profile, inputs.region)
    assembly = synth(inputs, progress)
    run = cdk.run(
        cdk.destroy_arguments(assembly, inputs.stack),
        aws_env(profile, inputs.region),
        inputs.stack_dir,
        inputs.cdk_log,
    )
    if run.exit_code != 0:
        raise local.DeployFailedError(run.failure("cdk destroy failed"), "see the log named above")
    return {"stack": inputs.stack, "deleted": True}
