"""`devenv synth` and `devenv diff`: the CDK app (the stack_dir setting) synthesized in-process, diffed by the
pinned CDK CLI (run as every command runs it: devenv.targets.cdk.run)."""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import typer

from devenv.cli.application import Application, OutputFormat
from devenv.cli.options import (
    ContextOption,
    OutputOption,
    PropsOption,
    QuietOption,
    TargetOption,
    parse_context,
)
from devenv.config import Settings
from devenv.errors import ConfigError, DevenvError
from devenv.runtime.state import StateDir
from devenv.stack_names import STACK_NAME
from devenv.targets.endpoints import Target

TEMPLATE_FILE = f"{STACK_NAME}.template.json"


class SynthFailedError(DevenvError):
    """The CDK app did not synthesize (a cdk-nag finding, a CloudFormation validation error, ...)."""

    exit_code = 1


def synth(
    stack_dir: Path, props_file: Path | None, outdir: Path, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Synthesize the stack into `outdir`; a summary of what was written. Bad props raise ConfigError."""
    from devenv.targets import cdk  # the CDK side loads only for a synth

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    synthesize = cdk.import_app(stack_dir, "app").synthesize
    PropsError = cdk.import_app(stack_dir, "config").PropsError

    if props_file is not None and not props_file.is_file():
        raise ConfigError(
            f"props file {props_file} does not exist", "pass --props with an existing JSON file"
        )
    started = time.monotonic()
    try:
        assembly = synthesize(props_file, outdir, context)
    except PropsError as exc:
        raise ConfigError(
            str(exc), f"fix the prop named above ({stack_dir}/config.py lists every prop)"
        ) from None
    except RuntimeError as exc:  # jsii: a validation plugin (cdk-nag, CloudFormation Validate) failed
        report = outdir / "validation-report.json"
        raise SynthFailedError(
            f"the stack did not synthesize: {str(exc).splitlines()[0]}",
            f"see the findings above and {report}; fix them or acknowledge them in {stack_dir}/nag.py with a reason",
        ) from None
    template_path = assembly / TEMPLATE_FILE
    template = json.loads(template_path.read_text())
    counts = Counter(resource["Type"] for resource in template["Resources"].values())
    return {
        "stack": STACK_NAME,
        "assembly": str(assembly),
        "template": str(template_path),
        "props_file": str(props_file) if props_file else None,
        "resources": sum(counts.values()),
        "resource_types": dict(sorted(counts.items())),
        "outputs": sorted(template.get("Outputs", {})),
        "seconds": round(time.monotonic() - started, 2),
    }


def target_reachable(settings: Settings, target: Target) -> tuple[bool, str]:
    """Whether the target can answer a diff, and why not."""
    if target is Target.local:
        try:
            with socket.create_connection(("127.0.0.1", settings.emulator_port), timeout=1):
                return True, f"emulator at 127.0.0.1:{settings.emulator_port}"
        except OSError as exc:
            return False, f"no emulator answers at 127.0.0.1:{settings.emulator_port} ({exc.strerror or exc})"
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        identity = boto3.client(
            "sts", config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 1})
        ).get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        return False, f"AWS does not answer with the default credentials ({exc})"
    return True, f"AWS account {identity['Account']}"


def baseline_template(settings: Settings, target: Target, scratch: Path) -> Path:
    """What to diff against when the target cannot answer: the template last deployed there if recorded
    (`<state_dir>/deployed/<target>/LlmProxyStack.template.json`), else an empty template."""
    recorded = settings.state_dir / "deployed" / target.value / TEMPLATE_FILE
    if recorded.is_file():
        return recorded
    empty = scratch / "empty.template.json"
    empty.write_text(json.dumps({"Resources": {}}))
    return empty


def run_diff(settings: Settings, target: Target, assembly: Path, app: Application) -> dict[str, Any]:
    """`cdk diff` of the synthesized assembly against the target, or a template diff if it cannot answer."""
    from devenv.targets import cdk, deployment
    from devenv.targets.local import endpoint_for

    reachable, reason = target_reachable(settings, target)
    arguments = ["diff", "--app", str(assembly), "--no-notices", "--no-color", "--ci", STACK_NAME]
    env = (
        cdk.local_env(endpoint_for(settings.emulator_port), settings.region)
        if target is Target.local
        else deployment.aws_env(None, None)
    )
    with tempfile.TemporaryDirectory(prefix="devenv-diff-") as scratch:
        if reachable:
            method = "template" if target is Target.local else "auto"
            arguments += ["--method", method]
            baseline = f"the deployed stack ({reason})"
        else:
            method = "offline-template"
            base_path = baseline_template(settings, target, Path(scratch))
            arguments += ["--template", str(base_path)]
            recorded = base_path.parent != Path(scratch)
            baseline = str(base_path) if recorded else "an empty template (no deployed template recorded)"
            app.info(f"[yellow]{target.value} cannot answer[/]: {reason}; diffing against {baseline}")
        run = cdk.run(arguments, env, settings.stack_dir, StateDir(settings.state_dir).log_for(cdk.LOG_NAME))
    text = "\n".join(line for line in run.lines if not line.startswith("b'!!")).strip()
    if run.exit_code not in (0, 1):
        raise DevenvError(run.failure("cdk diff failed"), "see the CDK CLI output")
    match = re.search(r"Number of stacks with differences: (\d+)", text)
    return {
        "target": target.value,
        "method": method,
        "baseline": baseline,
        "differences": bool(match and int(match.group(1))),
        "diff": text,
    }


def synth_for(
    settings: Settings, target: Target, props: Path | None, outdir: Path | None, context: list[str]
) -> dict[str, Any]:
    """`synth` with the commands' defaults: the target's props and cdk.out, both in the CDK app."""
    from devenv.targets import cdk

    stack_dir = settings.stack_dir
    props_file = (props or cdk.props_file(stack_dir, target.value)).resolve()
    return synth(stack_dir, props_file, (outdir or stack_dir / "cdk.out").resolve(), parse_context(context))


OutdirOption = typer.Option(
    None, "--outdir", help="where the cloud assembly goes [default: cdk.out in the CDK app]"
)


def register(app: typer.Typer) -> None:
    @app.command("synth")
    def synth_command(
        ctx: typer.Context,
        props: Path | None = PropsOption,
        target: Target = TargetOption,
        context: list[str] = ContextOption,
        outdir: Path | None = OutdirOption,
        output: OutputFormat = OutputOption,
        quiet: bool = QuietOption,
    ) -> None:
        """Synthesize LlmProxyStack (with cdk-nag checks) into a cloud assembly [default: cdk.out in the app]."""
        from devenv.cli.application import application

        application_ = application(ctx, output, quiet)
        summary = synth_for(application_.settings, target, props, outdir, context)
        if application_.json_output:
            application_.emit_json(summary)
            return
        application_.info(
            f"synthesized {STACK_NAME}: {summary['resources']} resources, "
            f"{len(summary['resource_types'])} types, in {summary['seconds']} s -> {summary['template']}"
        )

    @app.command("diff")
    def diff_command(
        ctx: typer.Context,
        target: Target = TargetOption,
        props: Path | None = PropsOption,
        context: list[str] = ContextOption,
        outdir: Path | None = OutdirOption,
        output: OutputFormat = OutputOption,
        quiet: bool = QuietOption,
    ) -> None:
        """Show what a deploy to the target would change (a template diff when the target cannot answer)."""
        from devenv.cli.application import application

        application_ = application(ctx, output, quiet)
        summary = synth_for(application_.settings, target, props, outdir, context)
        result = run_diff(application_.settings, target, Path(summary["assembly"]), application_)
        if application_.json_output:
            application_.emit_json(result)
            return
        application_.out.print(result["diff"], highlight=False, markup=False)
