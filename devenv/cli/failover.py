"""`devenv failover`: failover experiments under load against the local stack or AWS.

    devenv failover list                       the experiments in loadtests/failover/ (the loadtests_dir setting)
    devenv failover NAME... --target local|aws run one or more (`--output json`: one journal, or
                                               {"experiments": [...], "exit_code": N} for several)
    devenv failover --all --target local       run them all, one after the other

Exit codes: 0 every experiment passed; 1 a criterion or the hypothesis breached; 2 a set-up error, an
experiment aborted because the hypothesis did not hold before injection, or a bad experiment file
(then nothing is injected). Each run writes journal.json, timeline.json and timeline.png in a run folder.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from devenv.cli.application import Application, OutputFormat
from devenv.cli.options import (
    ManagementTokenOption,
    OutputOption,
    ProjectApiKeyOption,
    QuietOption,
    TargetOption,
    UrlOption,
)
from devenv.errors import ConfigError, UsageError
from devenv.runtime.state import StateDir
from devenv.targets import dashboard_link
from devenv.targets.endpoints import Target

if TYPE_CHECKING:
    from devenv.failover import experiment as ex

HEADLINE = (
    "failed_requests",
    "failure_rate",
    "recovery_s",
    "p99_ms_during",
    "p99_ms_after",
    "lost_events",
    "duplicate_events",
)


def register(app: typer.Typer) -> None:
    app.command("failover")(failover)


def failover(
    ctx: typer.Context,
    names: list[str] = typer.Argument(
        None, metavar="NAME", help="experiment name(s), or `list`", show_default=False
    ),
    run_all: bool = typer.Option(False, "--all", help="run every experiment"),
    target: Target = TargetOption,
    experiments_dir: Path | None = typer.Option(
        None, "--experiments-dir", help="where the experiment YAML files are [failover/ in loadtests_dir]"
    ),
    duration: float | None = typer.Option(
        None, "--duration", min=1, help="override every experiment's load duration_s (seconds)"
    ),
    tolerance: list[str] = typer.Option(
        [],
        "--tolerance",
        metavar="KEY=VALUE",
        help="override a criterion or tolerance, e.g. max_failure_rate=0.05 (repeatable)",
    ),
    url: str | None = UrlOption,
    management_token: str | None = ManagementTokenOption,
    api_key: str = ProjectApiKeyOption,
    report_dir: Path | None = typer.Option(
        None, "--report-dir", help="where run folders go [<state dir>/failover]"
    ),
    output: OutputFormat = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Failover experiments under load: a verdict, failed requests, recovery time and lost audit events."""
    from devenv.cli.application import application
    from devenv.failover import experiment as ex  # the experiment files' YAML loads only for this command

    app = application(ctx, output, quiet)
    experiments_dir = experiments_dir or ex.experiments_dir(app.settings.loadtests_dir)
    names = names or []
    if names == ["list"]:
        _list(app, experiments_dir)
        return
    if bool(names) == run_all:
        raise UsageError(
            "name the experiment(s) to run or pass --all (not both)",
            "see `devenv failover list` for the experiments",
        )
    experiments = _load(experiments_dir, names, duration, tolerance)
    from devenv.failover.target import connect

    state = StateDir(app.settings.state_dir)
    try:
        connected = connect(target, state, url, management_token, app.settings.region)
    except Exception as exc:
        if app.json_output and hasattr(exc, "message"):
            app.emit_json({"verdict": "error", "exit_code": 2, "setup_error": exc.message})
        raise
    base = report_dir or state.root / "failover"
    journals = []
    for experiment in experiments:
        run_dir = _run_dir(base, experiment.name, target.value)
        app.info(f"[bold]{experiment.name}[/] on {connected.endpoint.url}; run folder {run_dir}")
        from devenv.failover import runner  # aiohttp and Locust's plumbing load only for a run

        journal = runner.run(experiment, connected, run_dir, lambda m: app.info(f"  {m}"), api_key)
        journals.append(journal)
        if not app.json_output:
            _print(app, journal)
    if app.json_output:
        single = len(names) == 1
        app.emit_json(journals[0] if single else {"experiments": journals, "exit_code": _exit_code(journals)})
    code = _exit_code(journals)
    if code:
        raise typer.Exit(code)


def _exit_code(journals: list[dict[str, Any]]) -> int:
    codes = [j["exit_code"] for j in journals]
    return 2 if 2 in codes else max(codes, default=0)


def _load(
    directory: Path, names: list[str], duration: float | None, overrides: list[str]
) -> list[ex.Experiment]:
    """Every experiment to run, validated (and overridden) before anything runs."""
    from devenv.failover import experiment as ex

    try:
        if names:
            chosen = [ex.find(name, directory) for name in names]
        else:
            files = ex.discover(directory)
            if not files:
                raise ex.NoSuchExperiment(f"no experiment files (*.yaml) in {directory}")
            chosen = [ex.load_file(path) for path in files.values()]
        return [ex.with_overrides(e, duration, overrides) for e in chosen]
    except ex.NoSuchExperiment as exc:
        raise ConfigError(
            str(exc), f"name one that `devenv failover list` shows, or add NAME.yaml to {directory}"
        ) from None
    except ex.ExperimentError as exc:
        raise ConfigError(
            str(exc), f"fix the experiment file (keys are in {directory / 'schema.json'})"
        ) from None


def _run_dir(base: Path, name: str, target: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = base / f"{stamp}-{name}-{target}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = base / f"{stamp}-{name}-{target}-{suffix}"
    return run_dir


def _list(app: Application, directory: Path) -> None:
    from devenv.failover import experiment as ex

    rows = []
    for name, path in ex.discover(directory).items():
        try:
            found = ex.load_file(path)
            rows.append({"name": name, "description": found.description, "file": str(path), "error": None})
        except ex.ExperimentError as exc:
            rows.append({"name": name, "description": "", "file": str(path), "error": str(exc)})
    if app.json_output:
        app.emit_json({"experiments": rows})
        return
    for row in rows:
        text = row["description"] if row["error"] is None else f"[red]invalid:[/] {row['error']}"
        app.out.print(f"[bold]{row['name']:<24}[/] {text}", highlight=False)


def _print(app: Application, journal: dict[str, Any]) -> None:
    color = {"pass": "green", "fail": "red"}.get(journal["verdict"], "yellow")
    figures = "  ".join(f"{k}={journal.get(k)}" for k in HEADLINE)
    app.out.print(
        f"[{color}]{journal['verdict'].upper()}[/] {journal['experiment']}: {figures}", highlight=False
    )
    for breach in journal["breaches"]:
        app.out.print(f"  breach: {breach}", highlight=False)
    for error in journal["errors"]:
        app.out.print(f"  error: {error}", highlight=False)
    for step in journal["steps"]:
        if step.get("status") == "skipped":
            app.out.print(f"  skipped {step['action']}: {step['detail']}", highlight=False)
    if journal["missing_ids"]:
        shown = ", ".join(journal["missing_ids"][:10])
        more = len(journal["missing_ids"]) - 10
        app.out.print(
            f"  missing audit events: {shown}{f' (+{more} more)' if more > 0 else ''}", highlight=False
        )
    if journal.get("dashboard"):
        app.out.print(f"  {dashboard_link.line(journal['dashboard'])}", highlight=False, markup=False)
    app.out.print(f"  report: {journal.get('report')}  journal: {journal.get('journal')}", highlight=False)
