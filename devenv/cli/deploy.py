"""`devenv deploy`, `devenv destroy`, `devenv parity`: the CDK app on the local cloud or on AWS.

Both targets deploy the same cached cloud assembly with the same pinned CDK CLI; the local target is the
emulator `devenv up` runs (devenv.emulator), or LocalStack with `--emulator localstack`.
"""

from __future__ import annotations

import contextlib
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from devenv.cli import progress_view
from devenv.cli.application import Application, OutputFormat, application
from devenv.cli.options import (
    ContextOption,
    OutputOption,
    PropsOption,
    QuietOption,
    StackChoice,
    StackOption,
    TargetOption,
    VerboseOption,
    parse_context,
)
from devenv.config import region_problem
from devenv.errors import UsageError
from devenv.runtime.progress import Progress
from devenv.runtime.state import StateDir
from devenv.targets.endpoints import Target

if TYPE_CHECKING:
    from devenv.targets import deployment


class Emulator(StrEnum):
    moto = "moto"
    localstack = "localstack"


ProfileOption = typer.Option(None, "--profile", envvar="AWS_PROFILE", help="AWS profile (aws target)")
RegionOption = typer.Option(
    None, "--region", help="AWS region [default: settings.region locally, your AWS config on aws]"
)
YesOption = typer.Option(False, "--yes", "-y", help="do not ask for confirmation (aws target)")


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("destroy")(destroy)
    app.command("parity")(parity_command)


def inputs_for(
    app: Application,
    target: Target,
    props: Path | None,
    context: list[str],
    region: str | None,
    stack: StackChoice = StackChoice.proxy,
) -> deployment.Inputs:
    from devenv.targets import cdk, deployment  # the deploy tools (boto3's exceptions) load only for a deploy

    if region is not None and (problem := region_problem(region)):
        raise UsageError(f"--region {region}: {problem}", "pass a region AWS has, e.g. --region eu-central-1")
    stack_dir = app.settings.stack_dir
    props_file = (props or cdk.props_file(stack_dir, target.value)).resolve()
    if not props_file.is_file():
        raise UsageError(
            f"props file {props_file} does not exist",
            f"pass --props with a JSON file (see {stack_dir}/props/)",
        )
    resolved_region = region or (app.settings.region if target is Target.local else None)
    return deployment.Inputs(
        app.settings.cdk_cache_dir or app.settings.state_dir,
        stack_dir,
        props_file,
        parse_context(context),
        resolved_region or "",
        StateDir(app.settings.state_dir).log_for(cdk.LOG_NAME),
        stack.stack_name,
    )


def showing(
    app: Application, progress: Progress, inputs: deployment.Inputs, verbose: bool
) -> contextlib.AbstractContextManager[None]:
    """The steps of a deploy as they happen (the CDK CLI's own output with --verbose)."""
    return progress_view.for_app(
        app, lambda: {"progress": progress.as_json()}, inputs.cdk_log if verbose else None
    )


def confirm(app: Application, question: str, yes: bool) -> None:
    if yes:
        return
    if app.json_output:
        raise UsageError("a deploy to AWS needs confirmation", "pass --yes with --output json")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Abort()


def deploy(
    ctx: typer.Context,
    target: Target = TargetOption,
    stack: StackChoice = StackOption,
    props: Path | None = PropsOption,
    context: list[str] = ContextOption,
    emulator: Emulator = typer.Option(
        Emulator.moto, "--emulator", help="the local emulator: moto (built in) or localstack"
    ),
    profile: str | None = ProfileOption,
    region: str | None = RegionOption,
    yes: bool = YesOption,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="print the diff against the target and stop (aws target)"
    ),
    verbose: bool = VerboseOption,
    output: OutputFormat = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Deploy LlmProxyStack (or, with --stack loadgen, the load generator's stack): synthesized once (cached),
    deployed by the CDK CLI, then verified resource by resource."""
    from devenv.targets import deployment, localstack
    from devenv.targets.local import endpoint_for

    app = application(ctx, output, quiet)
    inputs = inputs_for(app, target, props, context, region, stack)
    if target is Target.local and dry_run:
        raise UsageError("--dry-run applies to --target aws", "a local deploy is already disposable")
    if target is Target.aws and emulator is not Emulator.moto:
        raise UsageError("--emulator applies to --target local", "drop --emulator for the aws target")
    if target is Target.aws and not dry_run:
        confirm(app, f"Deploy {inputs.stack} to AWS (profile {profile or 'default'})?", yes)
    progress = Progress(deployment.DEPLOY_STEPS if target is Target.local else ("synth", "deploy"))
    with showing(app, progress, inputs, verbose), progress.recording_failure():
        if target is Target.aws and dry_run:
            diff = deployment.diff_aws(inputs, profile, progress)
        elif target is Target.aws:
            report = deployment.deploy_aws(inputs, profile, progress)
        elif emulator is Emulator.localstack:
            localstack.require_localstack()
            endpoint = localstack.endpoint()
            report = deployment.deploy_local(
                inputs,
                endpoint,
                progress,
                env=localstack.cdklocal_env(endpoint, inputs.region),
                probe_path="/_localstack/health",
            )
        else:
            report = deployment.deploy_local(inputs, endpoint_for(app.settings.emulator_port), progress)
    if target is Target.aws and dry_run:
        if app.json_output:
            app.emit_json({"target": "aws", "dry_run": True, "diff": diff})
        else:
            app.out.print(diff, highlight=False, markup=False)
        return
    result: dict[str, Any] = {"target": target.value, **report.as_json()}
    if app.json_output:
        app.emit_json(result)
        return
    state = "unchanged" if report.unchanged else report.status
    app.out.print(f"[green]{report.stack_name} {state}[/] ({len(report.resources) or '?'} resources)")
    for key, value in sorted(report.outputs.items()):
        app.out.print(f"  {key} = {value}", markup=False, highlight=False)


def destroy(
    ctx: typer.Context,
    target: Target = TargetOption,
    stack: StackChoice = StackOption,
    props: Path | None = PropsOption,
    context: list[str] = ContextOption,
    profile: str | None = ProfileOption,
    region: str | None = RegionOption,
    yes: bool = YesOption,
    verbose: bool = VerboseOption,
    output: OutputFormat = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Delete LlmProxyStack (or, with --stack loadgen, the load generator's stack); on the local cloud, also
    check that none of its resources remains (a realized stack's tasks stop with it)."""
    from devenv.targets import deployment
    from devenv.targets.local import endpoint_for

    app = application(ctx, output, quiet)
    inputs = inputs_for(app, target, props, context, region, stack)
    if target is Target.local:
        app.info(f"deleting {inputs.stack} from the local cloud")
        result = deployment.destroy_local(inputs, endpoint_for(app.settings.emulator_port))
    else:
        confirm(app, f"Destroy {inputs.stack} on AWS (profile {profile or 'default'})?", yes)
        progress = Progress(["synth"])
        with showing(app, progress, inputs, verbose), progress.recording_failure():
            result = deployment.destroy_aws(inputs, profile, progress)
    if app.json_output:
        app.emit_json({"target": target.value, **result})
    else:
        app.out.print(
            f"[green]{inputs.stack} destroyed[/]" if result["deleted"] else f"{inputs.stack} did not exist"
        )


def parity_command(
    ctx: typer.Context,
    stack: StackChoice = StackOption,
    props: Path | None = PropsOption,
    context: list[str] = ContextOption,
    template: Path | None = typer.Option(
        None, "--template", help="a synthesized template instead of the app's"
    ),
    output: OutputFormat = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Every resource of the template with its local fate; exits 1 if any is unsupported."""
    from devenv.targets import cdk, parity, templates

    app = application(ctx, output, quiet)
    if template is None:
        inputs = inputs_for(app, Target.local, props, context, None, stack)
        template = cdk.synthesize(
            inputs.state_dir, inputs.stack_dir, inputs.props_file, inputs.context
        ).template_path_of(inputs.stack)
    entries = parity.fates(templates.load_template(template), parity.supported_types())
    document = parity.summary(entries)
    if app.json_output:
        app.emit_json(document)
    else:
        from rich.table import Table

        table = Table("resource", "type", "fate", "note")
        for entry in entries:
            style = "red" if entry.fate == "unsupported" else None
            note = f"{entry.realized_by}: {entry.note}" if entry.realized_by else entry.note
            table.add_row(entry.logical_id, entry.type, entry.fate, note, style=style)
        app.out.print(table)
        app.out.print(", ".join(f"{count} {fate}" for fate, count in sorted(document["counts"].items())))
        metrics = Table(
            "namespace", "metrics", "measured locally from", "versus AWS", title="CloudWatch metrics"
        )
        for source in parity.METRICS:
            metrics.add_row(
                source.namespace,
                f"{source.metrics} ({source.dimensions})",
                source.measured_from,
                source.versus_aws,
            )
        app.out.print(metrics)
    if document["unsupported"]:
        raise typer.Exit(1)
