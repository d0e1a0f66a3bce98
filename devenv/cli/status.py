"""`devenv status`: what runs now, as data (`status_document`) and as tables (`SECTIONS`).

Everything shown is read from the running supervisor's state file; when no supervisor holds the lock,
nothing of the last run is shown as if it were alive (no services, no ECS table), only that devenv is
not running and, if it failed, why. Each section is a function of the document, so a new one is one
function added to SECTIONS. The ECS services' events are not in the state file: they are read as an AWS
user reads them, through `describe_services` on the emulator (`with_service_events`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import psutil
import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from devenv.cli.application import OutputFormat, application
from devenv.cli.options import OutputOption
from devenv.errors import NotRunningError, ServiceFailedError, UsageError
from devenv.runtime import crash
from devenv.runtime.state import StateDir

STATE_STYLES = {"running": "green", "failed": "red", "restarting": "yellow", "starting": "cyan"}
TARGET_STYLES = {"healthy": "green", "unhealthy": "red", "draining": "yellow", "initial": "cyan"}
WATCH_REFRESH_S = 1.0
EVENTS_SHOWN = 3  # ECS service events per service in the text output (all of them in JSON)


def register(app: typer.Typer) -> None:
    app.command()(status)


def status_document(state: StateDir) -> dict[str, Any]:
    """The status as data: `services` (a list) beside the facts (region, credentials, ECS services, ALB
    targets). When devenv is not running: `running` false, no services, and the last run's error."""
    snapshot = state.read()
    supervisor = snapshot.get("supervisor", {})
    if not state.supervisor_running():
        crashed = crash.detect(state)
        return {
            "running": False,
            "supervisor": {
                "pid": None,
                "phase": supervisor.get("phase"),
                "error": crashed.line() if crashed else supervisor.get("error"),
                "crashed": crashed is not None,
            },
            "services": [],
            "state_dir": str(state.root),
        }
    now = time.time()
    rows = []
    for name, svc in snapshot.get("services", {}).items():
        pid = svc.get("pid")
        alive = (bool(pid) and psutil.pid_exists(pid)) or bool(svc.get("container"))
        started_at = svc.get("started_at")
        rows.append(
            {
                "name": name,
                "state": svc.get("state", "unknown"),
                "health": svc.get("health", "unknown") if alive else "n/a",
                "pid": pid if alive else None,
                "ports": svc.get("ports", {}),
                "url": svc.get("url"),
                "uptime_s": round(now - started_at, 1) if alive and started_at else None,
                "restarts": svc.get("restarts", 0),
                "log": svc.get("log"),
            }
        )
    return {
        "running": True,
        "supervisor": {"pid": supervisor.get("pid"), "phase": supervisor.get("phase"), "error": None},
        "services": rows,
        "state_dir": str(state.root),
        **{k: v for k, v in snapshot.get("facts", {}).items() if k != "state_dir"},
    }


def with_service_events(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with each ECS service's events (`ecs_service_events`, newest first), read through the
    ECS API of the running emulator; or `ecs_service_events_error` when it does not answer."""
    env = document.get("aws_env") or {}
    if not document["running"] or not document.get("ecs_services") or "AWS_ENDPOINT_URL" not in env:
        return document
    from devenv.targets import local  # boto3 loads only when a stack runs

    try:
        events = local.ecs_service_events(env["AWS_ENDPOINT_URL"], env["AWS_REGION"])
    except NotRunningError as exc:
        return {**document, "ecs_service_events_error": exc.message}
    return {**document, "ecs_service_events": events}


def _styled(value: str, styles: dict[str, str]) -> Text:
    return Text(value, style=styles.get(value, ""))


def services_table(document: dict[str, Any]) -> RenderableType | None:
    if not document["services"]:
        return None
    table = Table(title="services", title_justify="left")
    for column in ("service", "state", "health", "pid", "ports", "url", "uptime"):
        # data is wrapped, never cut; the short columns are never wrapped
        table.add_column(column, overflow="fold", no_wrap=column not in ("ports", "url"))
    for svc in document["services"]:
        table.add_row(
            Text(svc["name"]),
            _styled(svc["state"], STATE_STYLES),
            Text(svc["health"]),
            Text(str(svc["pid"] or "")),
            Text(", ".join(str(p) for p in svc["ports"].values())),
            Text(svc["url"] or ""),
            Text(f"{svc['uptime_s']:.0f} s" if svc["uptime_s"] is not None else ""),
        )
    return table


def ecs_table(document: dict[str, Any]) -> RenderableType | None:
    """ECS services (running/desired) and their tasks, each with its health as the ALB sees it."""
    if not document.get("ecs_services"):
        return None
    table = Table(title="ECS services (realized)", title_justify="left")
    for column in ("service", "running/desired", "tasks"):
        table.add_column(column, overflow="fold", no_wrap=column != "tasks")
    for svc in document["ecs_services"]:
        tasks = Text()
        for index, task in enumerate(svc["tasks"]):
            if index:
                tasks.append("\n")
            tasks.append(f"{task['id'][:8]} {task['lastStatus']}")
            if task.get("target"):
                tasks.append(f", ALB target {task['target']} ")
                tasks.append_text(_styled(task.get("target_health") or "unknown", TARGET_STYLES))
        table.add_row(Text(svc["name"]), Text(f"{svc['running']}/{svc['desired']}"), tasks)
    return table


def service_events(document: dict[str, Any]) -> RenderableType | None:
    """The newest few events of each ECS service (UTC time and AWS's message, as written)."""
    if document.get("ecs_service_events_error"):
        return Text(f"ECS service events: {document['ecs_service_events_error']}", style="red")
    if not document.get("ecs_service_events"):
        return None
    lines = Text(
        f"ECS service events (UTC, newest {EVENTS_SHOWN} of each; all with --output json)", overflow="fold"
    )
    for _, events in sorted(document["ecs_service_events"].items()):
        for event in events[:EVENTS_SHOWN]:
            lines.append(f"\n  {event['createdAt'][11:19]}  {event['message']}")
    return lines


def alb_line(document: dict[str, Any]) -> RenderableType | None:
    if not document.get("alb_url"):
        return None
    line = Text(f"ALB mirror {document['alb_url']}: ")
    targets = document.get("targets") or []
    if not targets:
        line.append("no targets registered")
    for index, target in enumerate(targets):
        if index:
            line.append(", ")
        line.append(f"{target['target']} ")
        line.append_text(_styled(target["state"], TARGET_STYLES))
    return line


def facts_line(document: dict[str, Any]) -> RenderableType | None:
    if not document["running"]:
        error = document["supervisor"].get("error")
        line = Text(
            f"devenv is not running (state dir {document['state_dir']}); start it with `devenv up -d`"
        )
        if document["supervisor"].get("crashed"):
            line.append(f"\n{error}; `devenv up` clears it and starts again", style="red")
        elif error:
            line.append(f"\nthe last run failed: {error.splitlines()[0]}", style="red")
        return line
    line = Text(
        f"region {document.get('region')}, credentials test/test, state dir {document['state_dir']}",
        style="dim",
    )
    scale = document.get("time_scale", 1)
    if scale != 1:
        line.append(
            f"\ntime_scale {scale:g}: every CloudWatch period, alarm window and scaling cooldown of the "
            f"local cloud is {scale:g} times shorter than on AWS",
            style="yellow",
        )
    return line


def failed_line(document: dict[str, Any]) -> RenderableType | None:
    """The services that failed for good (their restart limit reached): why `status` exits non-zero."""
    failed = [svc["name"] for svc in document["services"] if svc["state"] == "failed"]
    if not failed:
        return None
    return Text(
        f"failed for good (restart limit reached): {', '.join(failed)}; read `devenv logs {failed[0]}`, "
        "then `devenv down` and `devenv up`",
        style="red",
    )


# What `devenv status` prints, in order; each returns None when it has nothing to show.
SECTIONS: list[Callable[[dict[str, Any]], RenderableType | None]] = [
    services_table,
    ecs_table,
    service_events,
    alb_line,
    failed_line,
    facts_line,
]


def render(document: dict[str, Any]) -> RenderableType:
    return Group(*[part for section in SECTIONS if (part := section(document)) is not None])


def status(
    ctx: typer.Context,
    output: OutputFormat = OutputOption,
    watch: bool = typer.Option(
        False,
        "--watch",
        "-w",
        help="redraw the tables every second until Ctrl-C (text output only; off a terminal each refresh"
        " is printed after the last, under its time)",
    ),
) -> None:
    """Each service: state, health, pid, ports, URL and uptime; the ECS services, their latest events and
    the ALB's targets.

    Exits 7 when devenv is not running, 5 while a service has failed for good (its restart limit reached).
    """
    app = application(ctx, output)
    state = StateDir(app.settings.state_dir)
    if watch:
        if app.json_output:
            raise UsageError("--watch redraws tables", "drop --watch, or use --output text")
        with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
            _watch(app.out, state)
        return
    document = with_service_events(status_document(state))
    if app.json_output:
        app.emit_json(document)
    else:
        app.out.print(render(document))
    if not document["running"]:
        raise typer.Exit(NotRunningError.exit_code)
    if any(svc["state"] == "failed" for svc in document["services"]):
        raise typer.Exit(ServiceFailedError.exit_code)


def _watch(out: Console, state: StateDir) -> None:
    """Refresh the status every WATCH_REFRESH_S: in place on a terminal; elsewhere (a pipe, a file) each
    refresh printed in full under a timestamped rule, since rich's Live writes off a terminal only once
    it stops."""
    if out.is_terminal:
        with Live(
            get_renderable=lambda: render(with_service_events(status_document(state))),
            console=out,
            refresh_per_second=1 / WATCH_REFRESH_S,
        ):
            while True:
                time.sleep(WATCH_REFRESH_S)
    else:
        while True:
            document = with_service_events(status_document(state))
            out.print(Rule(f"devenv status {time.strftime('%H:%M:%S')}", align="left"))
            out.print(render(document))
            out.file.flush()
            time.sleep(WATCH_REFRESH_S)
