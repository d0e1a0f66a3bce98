"""`devenv loadtest`: a Locust run against the local stack or AWS, with thresholds, a verdict and a report.

Exit codes: 0 every threshold held, 1 a threshold breached (named), 2 a set-up or infrastructure
error (target down, token refused, bad thresholds), 9 degraded: a Locust worker died during the run
(`--workers`), so the load was less than planned and the thresholds' verdict is not trusted. Each run
writes a folder with Locust's HTML, summary.json, timeline.json, the plots and report.html.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

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
from devenv.targets import aws_api, dashboard_link
from devenv.targets.endpoints import Target, resolve

if TYPE_CHECKING:
    from devenv.loadtest import runner


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
    from devenv.loadtest import runner  # the run's plumbing (YAML, Locust's helpers) loads only for a run
    from devenv.loadtest import workers as locust_workers

    app = application(ctx, output, quiet)
    thresholds_file = thresholds_file or app.settings.loadtests_dir / runner.THRESHOLDS
    if profile is not None and profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}", f"use one of: {', '.join(PROFILES)}")
    profile_name = profile if profile is not None else (None if web else "smoke")
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
    runner.require_locustfile(app.settings.loadtests_dir)
    state = StateDir(app.settings.state_dir)
    endpoint = resolve(target, state, url=url, management_token=management_token, region=app.settings.region)
    runner.preflight(endpoint, api_key)  # before the run folder: a target that is down leaves nothing behind
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = (report_dir or state.root / "loadtests") / f"{stamp}-{profile or 'web'}-{target}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = run_dir.with_name(f"{stamp}-{profile or 'web'}-{target}-{suffix}")
    aws, no_aws_reason = None, "an upstream called directly (--api-key) has no AWS APIs"
    if not api_key:
        try:
            aws = aws_api.connect(target, state, app.settings.region)
        except TargetError as exc:
            no_aws_reason = exc.message
    run_dir.mkdir(parents=True)
    effective = run_dir / "thresholds.yaml"
    th.dump(table, effective)
    return runner.RunPlan(
        endpoint=endpoint,
        run_dir=run_dir,
        thresholds_file=effective,
        profile=profile,
        loadtests_dir=app.settings.loadtests_dir,
        users=users,
        duration=f"{duration_s}s" if duration_s is not None else None,
        ramp_step=f"{step_s}s" if ramp_step is not None else None,
        planned_s=planned,
        api_key=api_key,
        aws=aws,
        no_aws_reason=no_aws_reason,
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
    if summary is None or (
        summary["requests"] == 0 and summary["verdict"] == "error" and not summary["started_at"]
    ):
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
        raise TargetError(
            f"the load test could not run: {summary['setup_error']}",
            f"the Locust log is {run_dir / runner.LOG_FILE}",
        )
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
