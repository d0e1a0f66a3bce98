"""`devenv loadtest`: a Locust run against the local stack or AWS, with thresholds, a verdict and a report.

Exit codes: 0 every threshold held, 1 a threshold breached (named), 2 a set-up or infrastructure
error (target down, token refused, bad thresholds; with `--on loadgen`: the load generator stack not
deployed, its master not answering or without workers), 9 degraded: a Locust worker died during the run
(`--workers`, or a stack worker left the master), so the load was less than planned and the thresholds'
verdict is not trusted. Each run writes a folder with Locust's HTML, summary.json, timeline.json, the
plots and report.html.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer._click.core import ParameterSource

from devenv.cli.application import Application, OutputFormat
from devenv.cli.options import (
    ManagementTokenOption,
    OutputOption,
    QuietOption,
    TargetOption,
    UrlOption,
    WorkersOption,
)
from devenv.errors import ConfigError, TargetError, UsageError
from devenv.loadtest.profiles import PROFILES, RAMP_STEP_S, parse_duration, plan, total_seconds
from devenv.runtime.ports import free_port
from devenv.runtime.state import StateDir
from devenv.stack_names import LOADGEN_STACK_NAME
from devenv.targets import aws_api, dashboard_link
from devenv.targets.endpoints import Endpoint, Target, resolve

if TYPE_CHECKING:  # Locust's plumbing and YAML load only for the command that runs
    from devenv.loadtest import runner
    from devenv.loadtest import thresholds as th


class LoadGenerator(StrEnum):
    """Where Locust runs: processes on this machine, or the deployed load generator stack's tasks."""

    here = "here"
    loadgen = "loadgen"


# What a run through the stack cannot honour: its master and workers are the stack's tasks, its master
# provisions with the stack's own management token.
NOT_WITH_LOADGEN = {
    "web": "--web (the master's web UI is the stack's: open --master-url)",
    "workers": "--workers (the stack runs its loadGenWorkers worker tasks)",
    "api_key": "--api-key (the stack's master provisions tokens through the proxy)",
    "management_token": "--management-token (the stack's master reads the stack's token secret)",
}


def register(app: typer.Typer) -> None:
    app.command("loadtest")(loadtest)


def loadtest(
    ctx: typer.Context,
    target: Target = TargetOption,
    profile: str | None = typer.Option(
        None,
        "--profile",
        help=f"load shape: {'|'.join(PROFILES)} [smoke; with --web: none, the UI sets users]",
    ),
    users: int | None = typer.Option(None, "--users", "-u", min=1, help="peak users [the profile's default]"),
    duration: str | None = typer.Option(None, "--duration", help="run length, e.g. 20s, 5m [the profile's]"),
    ramp_step: str | None = typer.Option(None, "--ramp-step", help="length of a ramp step, e.g. 10s [10s]"),
    web: bool = typer.Option(
        False, "--web", help="serve Locust's web UI on 127.0.0.1 instead of a headless run"
    ),
    web_port: int = typer.Option(0, "--web-port", min=0, max=65535, help="port of the web UI [a free one]"),
    workers: int | None = WorkersOption,
    on: LoadGenerator = typer.Option(
        LoadGenerator.here,
        "--on",
        help="here: Locust processes on this machine; loadgen: the deployed load generator stack's master "
        "and workers (`devenv deploy --stack loadgen`)",
    ),
    master_url: str | None = typer.Option(
        None,
        "--master-url",
        help="--on loadgen: the stack master's web UI [local: the realized master task; aws: required, "
        "through SSM port forwarding to the master task]",
    ),
    url: str | None = UrlOption,
    management_token: str | None = ManagementTokenOption,
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="LOADTEST_API_KEY",
        help="call an OpenAI-compatible server directly with this key",
    ),
    thresholds_file: Path | None = typer.Option(
        None, "--thresholds", help="thresholds YAML [thresholds.yaml in loadtests_dir]"
    ),
    threshold: list[str] = typer.Option(
        [], "--threshold", metavar="SCOPE.METRIC=VALUE", help="override one limit (repeatable)"
    ),
    report_dir: Path | None = typer.Option(
        None, "--report-dir", help="where run folders go [<state dir>/loadtests]"
    ),
    output: OutputFormat = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Load-test the LLM Proxy: headless with pass/fail thresholds and a report, or Locust's web UI."""
    from devenv.cli.application import application
    from devenv.loadtest import runner
    from devenv.loadtest import workers as locust_workers

    app = application(ctx, output, quiet)
    thresholds_file = thresholds_file or app.settings.loadtests_dir / runner.THRESHOLDS
    if profile is not None and profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}", f"use one of: {', '.join(PROFILES)}")
    profile_name = profile if profile is not None else (None if web else "smoke")
    if on is LoadGenerator.loadgen:
        _loadgen(ctx, app, target, profile_name, users, duration, ramp_step, url, master_url,
                 thresholds_file, threshold, report_dir)  # fmt: skip
        return
    if master_url is not None:
        raise UsageError("--master-url is the load generator stack's master", "add --on loadgen")
    try:
        run_plan = _plan(app, target, profile_name, users, duration, ramp_step, url, management_token,
                         api_key, thresholds_file, threshold, report_dir)  # fmt: skip
        run_plan = replace(run_plan, workers=locust_workers.default_count() if workers is None else workers)
    except TargetError as exc:
        if app.json_output:
            app.emit_json({"verdict": "error", "exit_code": 2, "setup_error": exc.message})
        raise
    if web:
        _web(app, run_plan, web_port)
        return
    generator = f"{run_plan.workers} Locust workers" if run_plan.workers else "one Locust process"
    app.info(
        f"load test [bold]{profile_name}[/] against {run_plan.endpoint.url} ({run_plan.endpoint.source}), "
        f"~{run_plan.planned_s:.0f}s, {generator}; run folder {run_plan.run_dir}"
    )
    summary = runner.run_headless(run_plan, app.info)
    _finish(app, run_plan, summary)


def _loadgen(
    ctx: typer.Context,
    app: Application,
    target: Target,
    profile: str | None,
    users: int | None,
    duration: str | None,
    ramp_step: str | None,
    url: str | None,
    master_url: str | None,
    thresholds_file: Path,
    overrides: list[str],
    report_dir: Path | None,
) -> None:
    """A run through the deployed load generator stack (devenv.loadtest.loadgen), reported like a local one."""
    from devenv.loadtest import loadgen

    given = [
        text
        for name, text in NOT_WITH_LOADGEN.items()
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ]
    if given:
        raise UsageError(
            f"--on loadgen does not take {', '.join(given)}", "leave it out, or run without --on loadgen"
        )
    checked = _checked(profile, users, duration, ramp_step, thresholds_file, overrides)
    state = StateDir(app.settings.state_dir)
    try:
        aws = aws_api.connect(target, state, app.settings.region)
        stack = loadgen.find_stack(aws)
        endpoint = loadgen.target(stack, aws, state, url)
        master = loadgen.Master(loadgen.master_url(stack, aws, state, master_url))
        workers = loadgen.check_ready(master, stack)  # before the run folder: nothing half-written
    except TargetError as exc:
        if app.json_output:
            app.emit_json({"verdict": "error", "exit_code": 2, "setup_error": exc.message})
        raise
    run_plan = _write_plan(
        app, state, target, profile, users, checked, endpoint, report_dir, "loadgen", aws=aws
    )
    app.info(
        f"load test [bold]{profile}[/] against {endpoint.url} through {LOADGEN_STACK_NAME} (its master "
        f"{master.url}, {workers} workers), ~{run_plan.planned_s:.0f}s; run folder {run_plan.run_dir}"
    )
    summary = loadgen.run(run_plan, stack, master, workers, app.info)
    _finish(app, run_plan, summary)


@dataclass(frozen=True)
class _Checked:
    """A run's options, checked before anything is started or written."""

    duration_s: float | None
    step_s: float
    ramp_step_given: bool
    planned_s: float
    table: th.Table


def _checked(
    profile: str | None,
    users: int | None,
    duration: str | None,
    ramp_step: str | None,
    thresholds_file: Path,
    overrides: list[str],
) -> _Checked:
    from devenv.loadtest import thresholds as th

    try:
        duration_s = parse_duration(duration) if duration is not None else None
        step_s = parse_duration(ramp_step) if ramp_step is not None else RAMP_STEP_S
        planned = total_seconds(plan(profile or "smoke", users, duration_s, step_s))
    except ValueError as exc:
        raise UsageError(
            str(exc), "see `devenv loadtest --help` for the profiles and duration forms"
        ) from None
    try:
        table = th.with_overrides(th.load(thresholds_file, profile), overrides)
    except th.ThresholdError as exc:
        raise ConfigError(str(exc), f"fix {thresholds_file} or the --threshold value") from None
    return _Checked(duration_s, step_s, ramp_step is not None, planned, table)


def _plan(
    app: Application,
    target: Target,
    profile: str | None,
    users: int | None,
    duration: str | None,
    ramp_step: str | None,
    url: str | None,
    management_token: str | None,
    api_key: str | None,
    thresholds_file: Path,
    overrides: list[str],
    report_dir: Path | None,
) -> runner.RunPlan:
    from devenv.loadtest import runner

    checked = _checked(profile, users, duration, ramp_step, thresholds_file, overrides)
    runner.require_locustfile(app.settings.loadtests_dir)
    state = StateDir(app.settings.state_dir)
    endpoint = resolve(target, state, url=url, management_token=management_token, region=app.settings.region)
    runner.preflight(endpoint, api_key)  # before the run folder: a target that is down leaves nothing behind
    aws, no_aws_reason = None, "an upstream called directly (--api-key) has no AWS APIs"
    if not api_key:
        try:
            aws = aws_api.connect(target, state, app.settings.region)
        except TargetError as exc:
            no_aws_reason = exc.message
    return _write_plan(
        app, state, target, profile, users, checked, endpoint, report_dir, None, api_key, aws, no_aws_reason
    )


def _write_plan(
    app: Application,
    state: StateDir,
    target: Target,
    profile: str | None,
    users: int | None,
    checked: _Checked,
    endpoint: Endpoint,
    report_dir: Path | None,
    suffix_name: str | None,
    api_key: str | None = None,
    aws: aws_api.AwsApi | None = None,
    no_aws_reason: str = "",
) -> runner.RunPlan:
    """The run folder (named by time, profile and target) with the run's effective thresholds."""
    from devenv.loadtest import runner
    from devenv.loadtest import thresholds as th

    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = "-".join(part for part in (stamp, profile or "web", str(target), suffix_name) if part)
    run_dir = (report_dir or state.root / "loadtests") / name
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = run_dir.with_name(f"{name}-{suffix}")
    run_dir.mkdir(parents=True)
    effective = run_dir / "thresholds.yaml"
    th.dump(checked.table, effective)
    return runner.RunPlan(
        endpoint=endpoint,
        run_dir=run_dir,
        thresholds_file=effective,
        profile=profile,
        loadtests_dir=app.settings.loadtests_dir,
        users=users,
        duration=f"{checked.duration_s}s" if checked.duration_s is not None else None,
        ramp_step=f"{checked.step_s}s" if checked.ramp_step_given else None,
        planned_s=checked.planned_s,
        api_key=api_key,
        aws=aws,
        no_aws_reason=no_aws_reason or "the target's AWS APIs are unknown",
    )


def _web(app: Application, run_plan: runner.RunPlan, port: int) -> None:
    from devenv.loadtest import runner

    port = port or free_port()

    def announce(url: str) -> None:
        if app.json_output:
            app.emit_json({"web_ui": url, "run_dir": str(run_plan.run_dir)})
        else:
            app.out.print(
                f"Locust web UI: {url}  (Ctrl-C to stop; report in {run_plan.run_dir})", highlight=False
            )

    summary = runner.run_web(run_plan, port, announce, app.info)
    if summary["requests"] == 0 and summary["verdict"] == "error" and not summary["started_at"]:
        app.info("web UI stopped; no load test ran, so there is no report")
        return
    _finish(app, run_plan, summary, emit_json=False)


def _finish(
    app: Application, run_plan: runner.RunPlan, summary: dict[str, Any], emit_json: bool = True
) -> None:
    from devenv.loadtest import report, runner

    run_dir = run_plan.run_dir
    summary["run_dir"] = str(run_dir)
    summary["dashboard"] = _dashboard(app, run_plan, summary)
    summary["report"] = str(report.write_report(run_dir, summary))
    if app.json_output:
        if emit_json:
            app.emit_json(summary)
    elif not app.quiet:
        report.print_summary(app.out, summary, run_dir)
    else:
        app.out.print(f"verdict: {summary['verdict']}", highlight=False)
    if summary["verdict"] == "error":
        log = (
            "the master's log: `devenv logs locust-master` (local) or the stack's log group"
            if summary.get("load_generator")
            else f"the Locust log is {run_dir / runner.LOG_FILE}"
        )
        raise TargetError(f"the load test could not run: {summary['setup_error']}", log)
    if summary["exit_code"]:
        raise typer.Exit(summary["exit_code"])


def _dashboard(app: Application, run_plan: runner.RunPlan, summary: dict[str, Any]) -> dict[str, Any] | None:
    """The stack's dashboard at the run's window (devenv.targets.dashboard_link); None when the run did not
    start or its target has no AWS APIs (an upstream called directly)."""
    if run_plan.aws is None or not summary.get("started_at"):
        return None
    started = float(summary["started_at"])
    base = dashboard_link.served(StateDir(app.settings.state_dir)) if run_plan.aws.name == "local" else None
    return dashboard_link.at_window(run_plan.aws.name, base, started, started + float(summary["duration_s"]))
