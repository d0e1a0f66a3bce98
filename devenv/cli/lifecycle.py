"""`devenv up | down | status | logs`: run the local stack under the supervisor (local processes, or
containers with `--runtime docker`)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import typer
from rich.table import Table

from devenv import services
from devenv.cli.application import Application, OutputFormat, application
from devenv.cli.options import OutputOption, QuietOption
from devenv.config import Runtime
from devenv.errors import DevenvError, NotRunningError, ServiceFailedError, UsageError
from devenv.runtime import resolve_runtime
from devenv.runtime.state import StateDir, tail
from devenv.runtime.supervisor import Supervisor, kill_recorded
from devenv.services import emulator

if TYPE_CHECKING:
    from devenv.targets.local_stack import RealizedStack

EVENTS_SHOWN = 3  # ECS service events per service in `status` text
STATE_ICONS = {"running": "[green]✓[/]", "failed": "[red]✗[/]", "restarting": "[yellow]↻[/]", "starting": "…"}


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
    app.command()(logs)


# -- up ---------------------------------------------------------------------------------------


def up(
    ctx: typer.Context,
    detach: bool = typer.Option(
        False, "--detach", "-d", help="run in the background; return once all is healthy"
    ),
    infra_only: bool = typer.Option(
        False, "--infra-only", envvar="DEVENV_INFRA_ONLY", help="only Postgres, Redis and the AWS emulator"
    ),
    auto_ports: bool = typer.Option(
        None, "--auto-ports/--no-auto-ports", help="pick free ports instead of failing on a busy one"
    ),
    runtime: Runtime = typer.Option(None, "--runtime", help="native | docker | auto [default: auto]"),
    output: OutputFormat = OutputOption,
    quiet: bool = QuietOption,
    detached_child: bool = typer.Option(False, "--detached-child", hidden=True),
) -> None:
    """Start the local stack: Postgres (Aurora), Redis (ElastiCache), the AWS emulator, ...

    In the foreground, Ctrl-C stops everything cleanly; with -d it returns once every service is
    healthy and `devenv down` stops it.
    """
    app = application(ctx, output, quiet)
    overrides = {k: v for k, v in {"auto_ports": auto_ports, "runtime": runtime}.items() if v is not None}
    if overrides:
        app.settings = app.settings.model_copy(update=overrides)
    chosen = resolve_runtime(app.settings.runtime)
    state = StateDir(app.settings.state_dir)
    if detach:
        _up_detached(app, state, infra_only)
        return
    lock = state.acquire_supervisor_lock()
    try:
        _up_foreground(app, state, infra_only, detached_child, chosen)
    finally:
        lock.close()


def _up_foreground(
    app: Application, state: StateDir, infra_only: bool, detached_child: bool, runtime: str
) -> None:
    """Run the supervisor in this process until SIGINT/SIGTERM: services, then the deployed stack."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    ports = services.claim_ports(app.settings, infra_only)
    specs = services.infrastructure(app.settings, state, ports, runtime)
    if not infra_only:
        specs += services.application(app.settings, state, ports, runtime)
    if runtime == "docker":
        from devenv.runtime import docker

        docker.ensure_images((s.extra["image"] for s in specs), lambda m: app.info(f"  [dim]{m}[/]"))
    supervisor = Supervisor(
        state, services.facts(app.settings, state, ports, runtime), on_event=_progress_printer(app)
    )
    stack: RealizedStack | None = None
    try:
        supervisor.start_all(specs)
        if not infra_only:
            stack = _deploy_and_realize(app, state, supervisor, ports, stop, runtime)
    except DevenvError as exc:
        supervisor.error = supervisor.error or exc.message
        supervisor.stop_all()
        raise
    except KeyboardInterrupt:
        supervisor.stop_all()
        raise
    if not detached_child:
        _report(app, state, f"all services healthy in {time.monotonic() - started:.2f} s")
        app.info("[dim]Ctrl-C stops everything.[/]")
    try:
        supervisor.watch(stop)
    finally:
        app.info("stopping…")
        if stack is not None:
            stack.shutdown()
        supervisor.stop_all()
        app.info("[green]stopped[/]")


def _deploy_and_realize(
    app: Application,
    state: StateDir,
    supervisor: Supervisor,
    ports: services.Ports,
    stop: threading.Event,
    runtime: str,
) -> RealizedStack:
    """Deploy the CDK app to the emulator and realize it; progress goes to the supervisor's state too."""
    from devenv.realize.realizer import LocalData
    from devenv.targets import (
        cdk,
        local_stack,  # boto3 and the realizer load only when a stack is deployed
    )

    assert ports.mock_upstream is not None and ports.aurora is not None and ports.elasticache is not None

    def say(message: str) -> None:
        supervisor.set_phase("deploying", message)
        app.info(f"  [dim]{message}[/]")

    endpoint = emulator.endpoint(ports.emulator)
    began = time.monotonic()
    outputs = local_stack.deploy(app.settings, state, endpoint, ports.mock_upstream, say)
    app.info(
        f"  {STATE_ICONS['running']} stack {cdk.STACK_NAME} deployed in {time.monotonic() - began:.2f} s"
    )
    began = time.monotonic()
    data = LocalData(ports.postgres, ports.redis, ports.redis_tls, ports.aurora, ports.elasticache)
    stack = local_stack.realize(
        app.settings,
        state,
        supervisor,
        endpoint,
        data,
        services.tls_files(state).ca_cert,
        outputs,
        say,
        stop,
        runtime,
    )
    supervisor.facts.update({"alb_url": stack.alb_url, "stack": local_stack.outputs_fact(outputs)})
    app.info(
        f"  {STATE_ICONS['running']} stack realized, answering at {stack.alb_url} in {time.monotonic() - began:.2f} s"
    )
    return stack


def _up_detached(app: Application, state: StateDir, infra_only: bool) -> None:
    """Start a supervisor in its own session, its output in the supervisor log; wait for it."""
    if state.supervisor_running():
        state.acquire_supervisor_lock()  # raises AlreadyRunningError with the details
    services.claim_ports(app.settings, infra_only)  # a busy port is reported here, not by the child
    state.ensure()
    state.state_file.unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "devenv",
        "--state-dir",
        str(state.root),
        "up",
        "--detached-child",
        "--quiet",
    ]
    argv += ["--runtime", app.settings.runtime]
    argv += ["--auto-ports"] if app.settings.auto_ports else ["--no-auto-ports"]
    argv += ["--infra-only"] if infra_only else []
    log_path = state.log_for("supervisor")
    started = time.monotonic()
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    printer = _progress_printer(app)
    seen: dict[str, str] = {}
    deadline = time.monotonic() + app.settings.ready_timeout_s * 2 + (30 if infra_only else 300)
    while True:
        snapshot = state.read()
        for name, svc in snapshot.get("services", {}).items():
            if seen.get(name) != svc["state"]:
                seen[name] = svc["state"]
                printer(name, svc["state"], "")
        phase = snapshot.get("supervisor", {}).get("phase")
        detail = snapshot.get("supervisor", {}).get("detail")
        if phase == "deploying" and detail and detail != seen.get("_detail"):
            seen["_detail"] = detail
            app.info(f"  [dim]{detail}[/]")
        if phase == "ready":
            break
        code = child.poll()
        if code is not None or phase == "failed" or time.monotonic() > deadline:
            if code is None:
                child.terminate()
                try:
                    child.wait(60)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            error = snapshot.get("supervisor", {}).get("error")
            if not error:
                error = f"the supervisor exited (code {code})\n--- last lines of {log_path} ---\n{tail(log_path, 30)}"
            raise ServiceFailedError(
                f"devenv up -d failed: {error}", "fix the cause above and run `devenv up -d` again"
            )
        time.sleep(0.02)
    _report(
        app, state, f"all services healthy in {time.monotonic() - started:.2f} s (supervisor pid {child.pid})"
    )
    app.info("[dim]`devenv down` stops everything; `devenv logs -f` follows the logs.[/]")


def _progress_printer(app: Application) -> Any:
    began: dict[str, float] = {}

    def on_event(name: str, state: str, detail: str) -> None:
        began.setdefault(name, time.monotonic())
        if state == "starting":
            app.info(f"  … {name} starting")
        elif state == "running":
            took = detail or f"ready in {time.monotonic() - began[name]:.2f} s"
            app.info(f"  {STATE_ICONS['running']} {name} {took}")
        elif state in ("failed", "restarting"):
            app.info(
                f"  {STATE_ICONS[state]} {name} {state}" + (f": {detail.splitlines()[0]}" if detail else "")
            )

    return on_event


def _report(app: Application, state: StateDir, headline: str) -> None:
    document = status_document(state)
    if app.json_output:
        app.emit_json(document)
        return
    app.info(f"[bold green]{headline}[/]")
    if app.quiet:
        return
    table = Table(title="devenv", show_lines=False)
    for column in ("service", "url", "ports"):
        table.add_column(column)
    for svc in document["services"]:
        table.add_row(svc["name"], svc["url"] or "", ", ".join(f"{k}={v}" for k, v in svc["ports"].items()))
    app.out.print(table)
    env = document.get("aws_env") or {}
    if env:
        app.out.print("Point an AWS SDK or CLI at the emulator:")
        for key, value in env.items():
            app.out.print(f"  export {key}={value}", highlight=False)


# -- status -----------------------------------------------------------------------------------


def status_document(state: StateDir) -> dict[str, Any]:
    """The status as data: `services` (a list) beside the facts (region, credentials, state dir)."""
    snapshot = state.read()
    running = state.supervisor_running()
    now = time.time()
    rows = []
    for name, svc in snapshot.get("services", {}).items():
        pid = svc.get("pid") if running else None
        alive = (bool(pid) and psutil.pid_exists(pid)) or (running and bool(svc.get("container")))
        svc_state = svc.get("state", "unknown") if running else "stopped"
        started_at = svc.get("started_at")
        rows.append(
            {
                "name": name,
                "state": svc_state,
                "health": svc.get("health", "unknown") if alive else "n/a",
                "pid": pid if alive else None,
                "ports": svc.get("ports", {}),
                "url": svc.get("url"),
                "uptime_s": round(now - started_at, 1) if alive and started_at else None,
                "restarts": svc.get("restarts", 0),
                "log": svc.get("log"),
            }
        )
    supervisor = snapshot.get("supervisor", {})
    return {
        "running": running,
        "supervisor": {"pid": supervisor.get("pid") if running else None, "phase": supervisor.get("phase")},
        "services": rows,
        "state_dir": str(state.root),
        **{k: v for k, v in snapshot.get("facts", {}).items() if k != "state_dir"},
    }


def status(ctx: typer.Context, output: OutputFormat = OutputOption) -> None:
    """Each service: state, health, pid, ports, URL and uptime; plus region and credentials."""
    app = application(ctx, output)
    state = StateDir(app.settings.state_dir)
    document = status_document(state)
    if document["running"] and document.get("ecs_services"):
        _add_service_events(document)
    if app.json_output:
        app.emit_json(document)
    else:
        if not document["running"]:
            app.out.print(f"devenv is not running (state dir {state.root}); start it with `devenv up -d`")
        table = Table()
        for column in ("service", "state", "health", "pid", "ports", "url", "uptime"):
            table.add_column(column)
        for svc in document["services"]:
            table.add_row(
                svc["name"],
                f"{STATE_ICONS.get(svc['state'], '')} {svc['state']}",
                svc["health"],
                str(svc["pid"] or ""),
                ", ".join(str(p) for p in svc["ports"].values()),
                svc["url"] or "",
                f"{svc['uptime_s']:.0f} s" if svc["uptime_s"] is not None else "",
            )
        if document["services"]:
            app.out.print(table)
        if document.get("ecs_services"):
            ecs = Table(title="ECS services (realized)")
            for column in ("service", "running/desired", "tasks"):
                ecs.add_column(column)
            for svc in document["ecs_services"]:
                tasks = ", ".join(f"{t['id'][:8]} {t['lastStatus']}/{t['health']}" for t in svc["tasks"])
                ecs.add_row(svc["name"], f"{svc['running']}/{svc['desired']}", tasks)
            app.out.print(ecs)
        _print_service_events(app, document)
        if document.get("targets") is not None and document.get("alb_url"):
            health = ", ".join(f"{t['target']} {t['state']}" for t in document["targets"]) or "no targets"
            app.out.print(f"ALB mirror {document['alb_url']}: {health}")
        if document["running"]:
            app.out.print(f"region {document.get('region')}, credentials test/test, state dir {state.root}")
    if not document["running"]:
        raise typer.Exit(3)


def _add_service_events(document: dict[str, Any]) -> None:
    """Each ECS service's events, read as an AWS user reads them (describe_services on the emulator)."""
    from devenv.targets import local  # boto3 loads only when a stack runs

    env = document.get("aws_env") or {}
    if "AWS_ENDPOINT_URL" not in env:
        return
    try:
        document["ecs_service_events"] = local.ecs_service_events(env["AWS_ENDPOINT_URL"], env["AWS_REGION"])
    except NotRunningError as exc:
        document["ecs_service_events_error"] = exc.message


def _print_service_events(app: Application, document: dict[str, Any]) -> None:
    if document.get("ecs_service_events_error"):
        app.out.print(
            f"ECS service events: {document['ecs_service_events_error']}", markup=False, highlight=False
        )
    if not document.get("ecs_service_events"):
        return
    app.out.print(f"ECS service events (UTC, newest {EVENTS_SHOWN} of each; all with --output json):")
    for _, events in sorted(document["ecs_service_events"].items()):
        for event in events[:EVENTS_SHOWN]:
            line = f"  {event['createdAt'][11:19]}  {event['message']}"
            app.out.print(line, markup=False, highlight=False, soft_wrap=True)


# -- down -------------------------------------------------------------------------------------


def down(
    ctx: typer.Context,
    volumes: bool = typer.Option(
        False, "--volumes", "-v", help="also delete data (Postgres, Redis, emulator)"
    ),
    quiet: bool = QuietOption,
) -> None:
    """Stop everything `devenv up` started, and nothing else."""
    app = application(ctx, quiet=quiet)
    state = StateDir(app.settings.state_dir)
    snapshot = state.read()
    if state.supervisor_running():
        pid = snapshot.get("supervisor", {}).get("pid")
        app.info(f"stopping the supervisor (pid {pid}) and its services…")
        if pid:
            with contextlib.suppress(ProcessLookupError):
                psutil.Process(pid).send_signal(signal.SIGTERM)
        grace = app.settings.stop_timeout_s * max(1, len(snapshot.get("services", {}))) + 10
        if not state.wait_until_unlocked(grace) and pid:
            app.info("[yellow]the supervisor did not stop in time; killing it[/]")
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
            state.wait_until_unlocked(5)
    else:
        app.info("devenv is not running")
    leftovers = 0
    for svc in snapshot.get("services", {}).values():
        if svc.get("pid") and kill_recorded(
            svc["pid"], svc.get("create_time"), grace_s=app.settings.stop_timeout_s
        ):
            leftovers += 1
    if snapshot.get("facts", {}).get("runtime") == "docker":
        from devenv.runtime import docker as docker_runtime

        leftovers += docker_runtime.clean_up(state, volumes)
    if leftovers:
        app.info(f"stopped {leftovers} process(es) left behind by a supervisor that died")
    if volumes:
        shutil.rmtree(state.data, ignore_errors=True)
        app.info(f"deleted data under {state.data}")
    app.info("[green]down[/]")


# -- logs -------------------------------------------------------------------------------------


def logs(
    ctx: typer.Context,
    service: str = typer.Argument(None, help="one service (default: all)"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new lines"),
    lines: int = typer.Option(50, "--tail", "-n", min=0, help="how many past lines to show per service"),
) -> None:
    """Print the services' logs (one file per process under the state dir)."""
    app = application(ctx)
    state = StateDir(app.settings.state_dir)
    available = sorted(p.stem for p in state.logs.glob("*.log")) if state.logs.is_dir() else []
    if service is not None and service not in available:
        raise UsageError(
            f"no log for service {service!r}",
            f"choose one of: {', '.join(available) or '(none yet: run `devenv up` first)'}",
        )
    if not available:
        raise NotRunningError("there are no logs yet", "run `devenv up` first")
    chosen = [service] if service else available
    prefix = len(chosen) > 1
    width = max(len(name) for name in chosen)
    for name in chosen:
        text = tail(state.log_for(name), lines)
        for line in text.splitlines() if text else []:
            _print_line(name, line, width, prefix)
    if follow:
        _follow({name: state.log_for(name) for name in chosen}, width, prefix)


def _print_line(name: str, line: str, width: int, prefix: bool) -> None:
    sys.stdout.write(f"{name:<{width}} | {line}\n" if prefix else f"{line}\n")


def _follow(paths: dict[str, Path], width: int, prefix: bool) -> None:
    offsets = {name: path.stat().st_size if path.exists() else 0 for name, path in paths.items()}
    partial = dict.fromkeys(paths, "")
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            for name, path in paths.items():
                if not path.exists():
                    continue
                size = path.stat().st_size
                if size < offsets[name]:
                    offsets[name] = 0
                if size == offsets[name]:
                    continue
                with open(path, "rb") as handle:
                    handle.seek(offsets[name])
                    chunk = handle.read()
                offsets[name] += len(chunk)
                *complete, partial[name] = (partial[name] + chunk.decode(errors="replace")).split("\n")
                for line in complete:
                    _print_line(name, line, width, prefix)
            sys.stdout.flush()
            time.sleep(0.2)
