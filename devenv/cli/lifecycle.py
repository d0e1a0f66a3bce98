"""`devenv up | down`: run the local stack under the supervisor (local processes, or containers with
`--runtime docker`), showing its steps as they happen (devenv.cli.progress_view)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import typer
from rich import box
from rich.table import Table
from rich.text import Text

from devenv.cli import detach, progress_view
from devenv.cli import watch as watch_command
from devenv.cli.application import Application, OutputFormat, application
from devenv.cli.options import OutputOption, QuietOption, VerboseOption
from devenv.cli.status import status_document
from devenv.config import Runtime
from devenv.errors import AbortedError, DevenvError, ServiceFailedError, UsageError
from devenv.runtime import crash, logfiles, resolve_runtime
from devenv.runtime.children import stop_recorded
from devenv.runtime.progress import Progress
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import Supervisor
from devenv.services import dashboard, emulator

if TYPE_CHECKING:
    from devenv.services import assembly
    from devenv.targets.local_stack import RealizedStack

UP_STEPS = ("services", "synth", "bootstrap", "deploy", "realize")
CDK_LOG = "cdk"  # devenv.targets.cdk.LOG_NAME, named here so `up --infra-only` never loads the CDK side
# The stack outputs that name AWS's DNS; locally the ALB mirror stands for them.
LOCAL_STAND_INS = {"AlbUrl": "alb_url", "AlbDnsName": "alb_host"}
ROLLBACK_WAIT_S = 60.0  # how long `up -d` lets a failed supervisor stop what it started
# README, "Exit codes"; any other exit of the supervisor is a crash
DOCUMENTED_EXIT_CODES = {*range(1, 9), AbortedError.exit_code}


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)


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
        None,
        "--auto-ports/--no-auto-ports",
        help="pick free ports instead of failing on a busy one [default: the auto_ports setting]",
        show_default=False,
    ),
    runtime: Runtime = typer.Option(
        None, "--runtime", help="native, docker, or auto (docker when a daemon answers) [default: auto]"
    ),
    watch: bool = typer.Option(
        False,
        "--watch",
        help="once up, roll the proxy and dispatcher on every saved change to their source (as `devenv "
        "watch`); with -d, watch in the foreground until Ctrl-C, the stack staying up",
    ),
    fresh: bool = typer.Option(
        False,
        "--fresh",
        help="deploy the stack from scratch: delete the saved local cloud instead of restoring it",
    ),
    verbose: bool = VerboseOption,
    output: OutputFormat = OutputOption,
    quiet: bool = QuietOption,
    detached_child: bool = typer.Option(False, "--detached-child", hidden=True),
) -> None:
    """Start the local stack: Postgres (Aurora), Redis (ElastiCache), the AWS emulator, the CDK app
    deployed to it and realized (the ECS tasks behind the ALB mirror).

    In the foreground, Ctrl-C stops everything cleanly; with -d it returns once every service is
    healthy and `devenv down` stops it.
    """
    app = application(ctx, output, quiet)
    overrides = {k: v for k, v in {"auto_ports": auto_ports, "runtime": runtime}.items() if v is not None}
    if overrides:
        app.settings = app.settings.model_copy(update=overrides)
    chosen = resolve_runtime(app.settings.runtime)
    if watch and infra_only:
        raise UsageError("--watch rolls the stack's ECS services; --infra-only runs none", "drop one of them")
    if watch and chosen == "docker":
        raise watch_command.DOCKER_UNSUPPORTED
    if not infra_only:
        _require_cdk_app(app.settings.stack_dir)
    state = StateDir(app.settings.state_dir)
    if not detached_child:
        _recover_from_crash(app, state)
    if fresh and not state.supervisor_running():  # a running one is refused below, its cloud kept
        saved = emulator.saved_cloud_file(state)
        if saved.exists():
            saved.unlink()
            app.info(f"deleted the saved local cloud ({saved}): deploying from scratch")
    if detach:
        _up_detached(app, state, infra_only, chosen, verbose)
        if watch:
            watch_command.watch_running_stack(app, state)
        return
    lock = state.acquire_supervisor_lock()
    try:
        _up_foreground(app, state, infra_only, detached_child, chosen, verbose, watch)
    finally:
        lock.close()


def _require_cdk_app(stack_dir: Path) -> None:
    """`up` deploys the CDK app: a folder without it is said before anything starts."""
    missing = [name for name in ("cdk.json", "props/local.json") if not (stack_dir / name).is_file()]
    if missing:
        raise UsageError(
            f"no CDK app at {stack_dir.resolve()}: {' and '.join(missing)} missing",
            "run devenv from the folder that holds the app's folder, set stack_dir (devenv.toml or "
            "DEVENV_STACK_DIR) to the app, or start only the infrastructure with --infra-only",
        )


def _up_foreground(
    app: Application,
    state: StateDir,
    infra_only: bool,
    detached_child: bool,
    runtime: str,
    verbose: bool,
    watch: bool = False,
) -> None:
    """Run the supervisor in this process until SIGINT/SIGTERM: services, then the deployed stack (with
    `watch`, rolled on every saved change to its source).

    As the detached child of `up -d` (stdout = supervisor.log), the progress is written as log lines."""
    from devenv.services import assembly  # its TLS certificates' library loads only for `up`

    stop = threading.Event()
    watching = threading.Event()

    def on_stop_signal(signum: int, _frame: object) -> None:
        """Before the stack is up, a stop signal aborts `up` (rolled back below); once up, ends `watch`."""
        stop.set()
        if not watching.is_set():
            raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name} while starting")

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_stop_signal)
    started = time.monotonic()
    ports = assembly.claim_ports(app.settings, infra_only)
    specs = assembly.infrastructure(app.settings, state, ports, runtime)
    if not infra_only:
        specs += assembly.application(app.settings, state, ports, runtime)
    logfiles.prune_stopped_tasks(state.logs, running=set())
    if runtime == "docker":
        from devenv.runtime import docker

        docker.ensure_images((s.extra["image"] for s in specs), lambda m: app.info(f"  [dim]{m}[/]"))
    if not infra_only:
        specs += assembly.pages(app.settings, state, ports)  # native with either runtime: no image
    events = _EventPrinter(app, timestamps=detached_child)
    supervisor = Supervisor(state, assembly.facts(app.settings, state, ports, runtime), on_event=events)
    progress = Progress(["services"] if infra_only else UP_STEPS, on_change=supervisor.set_progress)
    stack: RealizedStack | None = None
    try:
        cdk_log = state.log_for(CDK_LOG) if verbose else None
        with (
            progress_view.for_app(app, supervisor.snapshot, cdk_log, timestamps=detached_child),
            progress.recording_failure(),
        ):
            progress.start("services", "starting")
            synthesis = None if infra_only else _Background(lambda: _synthesize(app, state, ports, progress))
            supervisor.start_all(specs)
            progress.done("services", f"{len(specs)} ready")
            if synthesis is not None:
                stack = _deploy_and_realize(app, state, supervisor, ports, stop, runtime, progress, synthesis)
    except DevenvError as exc:
        supervisor.error, supervisor.error_hint = supervisor.error or exc.message, exc.hint
        _roll_back(supervisor, stack, stop)
        raise
    except KeyboardInterrupt as exc:
        aborted = AbortedError(
            f"devenv up was {str(exc) or 'interrupted while starting'}",
            "everything it started was stopped; run `devenv up` again",
        )
        supervisor.error, supervisor.error_hint = aborted.message, aborted.hint
        _roll_back(supervisor, stack, stop)
        raise aborted from None
    except Exception as exc:  # a bug or an unforeseen library error: one line here, the trace in the log
        log_path = state.log_for("supervisor")
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(logfiles.marker(f"devenv up failed: {exc!r}") + traceback.format_exc())
        failure = DevenvError(
            f"devenv up failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}",
            f"everything it started was stopped; the traceback is in {log_path}",
        )
        supervisor.error, supervisor.error_hint = failure.message, failure.hint
        _roll_back(supervisor, stack, stop)
        raise failure from exc
    watching.set()
    headline = f"all services healthy in {time.monotonic() - started:.2f} s"
    if detached_child:
        app.info(
            f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {headline}; supervising (pid {supervisor.snapshot()['supervisor']['pid']})"
        )
    else:
        _report(app, state, headline, verbose)
        app.info("[dim]Ctrl-C stops everything.[/]")
    events.enabled = True
    if watch:
        facts = dict(supervisor.facts)
        threading.Thread(
            target=watch_command.run_beside_up,
            args=(app, state, facts, stop),
            name="live-reload",
            daemon=True,
        ).start()
    try:
        supervisor.watch(stop)
    finally:
        app.info("stopping…")
        if stack is not None:
            stack.shutdown()
        supervisor.stop_all()
        app.info("[green]stopped[/]")


def _roll_back(supervisor: Supervisor, stack: RealizedStack | None, stop: threading.Event) -> None:
    """A failed or interrupted `up` stops all it started (the realizer's threads, then every process)."""
    stop.set()
    if stack is not None:
        stack.shutdown()
    supervisor.stop_all()


def _recover_from_crash(app: Application, state: StateDir) -> None:
    """If the last supervisor died without stopping, say so in one line and clear what it left."""
    crashed = crash.detect(state)
    if crashed is None:
        return
    line = crashed.line()
    stopped = crash.clear(state, crashed)
    app.info(f"[yellow]{line}[/]" + (f"; stopped {len(stopped)}" if stopped else ""))


class _Background:
    """A call run in a daemon thread (it never holds up an interrupted `up`); `result` waits for it and
    returns its value or raises its error."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self._call = call
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name="synth", daemon=True).start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


def _synthesize(app: Application, state: StateDir, ports: assembly.Ports, progress: Progress) -> Any:
    """The synth step (the deploy tools' imports, then the cached or new cloud assembly), then the AWS
    SDK's models of the deploy and the realizer: neither needs a service, so both run while they start."""
    progress.start("synth", "loading the deploy tools")
    from devenv.targets import local_stack  # boto3 and the realizer load only when a stack is deployed

    assert ports.mock_upstream is not None
    synthesized = local_stack.synthesize(app.settings, state, ports.mock_upstream, progress)
    local_stack.load_sdk_models(app.settings, emulator.endpoint(ports.emulator))
    return synthesized


def _deploy_and_realize(
    app: Application,
    state: StateDir,
    supervisor: Supervisor,
    ports: assembly.Ports,
    stop: threading.Event,
    runtime: str,
    progress: Progress,
    synthesis: _Background,
) -> RealizedStack:
    """Deploy the synthesized CDK app to the emulator (bootstrap, deploy) and realize it."""
    inputs, cloud_assembly = synthesis.result()
    from devenv.realize.realizer import LocalData
    from devenv.services import assembly
    from devenv.targets import local_stack

    assert ports.mock_upstream is not None and ports.aurora is not None and ports.elasticache is not None
    assert ports.alb is not None and ports.alb_https is not None
    endpoint = emulator.endpoint(ports.emulator)
    warnings = supervisor.facts.setdefault("warnings", [])
    outputs = local_stack.deploy(app.settings, endpoint, inputs, cloud_assembly, progress, warnings.append)
    progress.start("realize", "the ECS tasks, the ALB mirror, the Aurora and ElastiCache endpoints")
    data = LocalData(ports.postgres, ports.redis, ports.redis_tls, ports.aurora, ports.elasticache)
    stack = local_stack.realize(
        app.settings,
        state,
        supervisor,
        endpoint,
        data,
        assembly.tls_files(state).ca_cert,
        outputs,
        stop,
        (ports.alb, ports.alb_https),
        runtime,
    )
    supervisor.facts.update(
        {
            "alb_url": stack.alb_url,
            "stack": local_stack.outputs_fact(outputs),
            # what the tasks run, for `devenv watch` (devenv.services.llmproxy.source_dir)
            "llmproxy_source": str(stack.realizer.llmproxy_source or ""),
        }
    )
    progress.done("realize", f"a request through the ALB mirror at {stack.alb_url} succeeded")
    return stack


def _up_detached(app: Application, state: StateDir, infra_only: bool, runtime: str, verbose: bool) -> None:
    """Start a supervisor in its own session, its output in the supervisor log; show its progress (read
    from the state file) until it is ready."""
    from devenv.services import assembly

    if state.supervisor_running():
        state.acquire_supervisor_lock()  # raises AlreadyRunningError with the details
    assembly.claim_ports(app.settings, infra_only)  # a busy port is reported here, not by the child
    state.ensure()
    state.state_file.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "devenv", "--state-dir", str(state.root), "up", "--detached-child"]
    argv += ["--runtime", app.settings.runtime]
    argv += ["--auto-ports"] if app.settings.auto_ports else ["--no-auto-ports"]
    argv += ["--infra-only"] if infra_only else []
    started = time.monotonic()

    def supervise(child_app: Application) -> None:
        lock = state.acquire_supervisor_lock()
        try:
            # the CDK CLI's output stays in cdk.log (`up -d --verbose` shows it from there)
            _up_foreground(child_app, state, infra_only, True, runtime, verbose=False)
        finally:
            lock.close()

    child = detach.start_supervisor(app, state.log_for("supervisor"), argv, supervise)
    deadline = time.monotonic() + app.settings.ready_timeout_s * 2 + (30 if infra_only else 300)
    with progress_view.for_app(app, state.read, state.log_for(CDK_LOG) if verbose else None):
        ready = _wait_until_ready(state, child, deadline)
    if not ready:
        raise _detached_failure(state, child)
    _report(
        app,
        state,
        f"all services healthy in {time.monotonic() - started:.2f} s (supervisor pid {child.pid})",
        verbose,
    )
    app.info("[dim]`devenv down` stops everything; `devenv logs -f` follows the logs.[/]")


def _wait_until_ready(state: StateDir, child: detach.Child, deadline: float) -> bool:
    """True once the detached supervisor is ready; False once it failed, exited, or ran out of time."""
    while True:
        phase = state.read().get("supervisor", {}).get("phase")
        if phase == "ready":
            return True
        if child.poll() is not None or phase == "failed" or time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _detached_failure(state: StateDir, child: detach.Child) -> DevenvError:
    """The detached supervisor's failure, once it has rolled back (or been stopped): its cause (with the
    failed service's last log lines, as a foreground `up` shows them), its fix and log, and its exit code
    (the table in the README)."""
    try:
        code = child.wait(ROLLBACK_WAIT_S)
    except subprocess.TimeoutExpired:  # not ready in time, or stuck rolling back: stop it
        child.terminate()
        try:
            child.wait(ROLLBACK_WAIT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        code = None
    supervisor = state.read().get("supervisor", {})
    log_path = state.log_for("supervisor")
    if supervisor.get("error"):
        cause = supervisor["error"]
    elif code is None:
        cause = "it was not ready in time"
    else:
        cause = f"the supervisor exited with code {code}"
    error = DevenvError(
        f"devenv up -d failed: {cause}",
        f"{supervisor.get('hint') or 'fix the cause and run `devenv up -d` again'}; "
        f"everything it started was stopped; what the supervisor did: {log_path}",
    )
    error.exit_code = (
        code if code is not None and code in DOCUMENTED_EXIT_CODES else ServiceFailedError.exit_code
    )
    return error


class _EventPrinter:
    """Service events once `up` is ready (a crash, a restart, a task replaced); before that the progress
    display shows them."""

    def __init__(self, app: Application, timestamps: bool) -> None:
        self.app = app
        self.timestamps = timestamps
        self.enabled = False

    def __call__(self, name: str, state: str, detail: str) -> None:
        if not self.enabled or self.app.quiet or state not in ("starting", "running", "failed", "restarting"):
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S ") if self.timestamps else ""
        line = f"{stamp}{name} {state}" + (f": {detail.splitlines()[0]}" if detail else "")
        self.app.progress_console.print(line, markup=False, highlight=False, emoji=False)


def _report(app: Application, state: StateDir, headline: str, verbose: bool) -> None:
    """What `up` leaves on screen once ready: every service (the realized ones too), where the stack's
    outputs point locally, the SDK exports. On a terminal it fits one screen under the steps (a URL per
    service, the exports on one line; the rest is in `devenv status`); off a terminal, or with
    --verbose, every port and stack output as well."""
    document = status_document(state)
    for warning in document.get("warnings") or []:
        app.warn(warning)
    if app.json_output:
        app.emit_json(document)
        return
    app.info(f"[bold green]{headline}[/]")
    if app.quiet:
        return
    env = document.get("aws_env") or {}
    if app.out.is_terminal and not verbose:
        app.out.print(_services_table(document, ports=False))
        if env:
            exports = " ".join(f"{key}={value}" for key, value in env.items())
            app.out.print(f"export {exports}", markup=False, highlight=False, emoji=False, soft_wrap=True)
        app.info(
            "[dim]`devenv status` shows ports, tasks and the stack's outputs; `up --verbose` all of it here.[/]"
        )
        return
    app.out.print(_services_table(document, ports=True))
    outputs = _local_outputs(document)
    if outputs is not None:
        app.out.print(outputs)
    page = next((svc["url"] for svc in document["services"] if svc["name"] == dashboard.NAME), None)
    if page:
        app.out.print(f"The stack's dashboard, live: {page}", highlight=False)
    if env:
        app.out.print("Point an AWS SDK or CLI at the emulator:")
        for key, value in env.items():
            app.out.print(f"  export {key}={value}", markup=False, highlight=False, emoji=False)


def _services_table(document: dict[str, Any], ports: bool) -> Table:
    """One row per service, in start order: the infrastructure, then what realize started (the Aurora and
    ElastiCache endpoints, the ALB mirror, each ECS task)."""
    if ports:
        table = Table(title="devenv", title_justify="left")
    else:  # compact: no title, a rule under the header only
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("service", "url", *(["ports"] if ports else [])):
        table.add_column(column, overflow="fold", no_wrap=column == "service")  # data is wrapped, never cut
    for svc in document["services"]:
        cells = [Text(svc["name"]), Text(svc["url"] or "")]
        if ports:
            cells.append(Text(", ".join(f"{k}={v}" for k, v in svc["ports"].items())))
        table.add_row(*cells)
    return table


def _local_outputs(document: dict[str, Any]) -> Table | None:
    """The stack's outputs as they work here: AWS DNS names replaced by the ALB mirror (the AWS value
    beside it, dimmed)."""
    outputs = document.get("stack") or {}
    if not outputs:
        return None
    alb_url = document.get("alb_url") or ""
    stand_ins = {"alb_url": alb_url, "alb_host": alb_url.split("://", 1)[-1]}
    table = Table(title="stack outputs (LlmProxyStack)", title_justify="left", show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in sorted(outputs.items()):
        local = stand_ins.get(LOCAL_STAND_INS.get(key, ""), "")
        shown = Text(local or str(value))
        if local:
            shown.append(f"  (the ALB mirror; on AWS {value})", style="dim")
        table.add_row(Text(key), shown)
    return table


# -- down -------------------------------------------------------------------------------------


def _stuck_supervisor(state: StateDir, grace_s: float) -> str:
    """What `down` says before it kills a supervisor that did not stop: where it was, and its log."""
    snapshot = state.read()
    phase = snapshot.get("supervisor", {}).get("phase") or "unknown"
    busy = [name for name, svc in (snapshot.get("services") or {}).items() if svc.get("state") != "stopped"]
    still = f"; not stopped yet: {', '.join(busy)}" if busy else ""
    return (
        f"the supervisor did not stop within {grace_s:.0f} s (phase {phase}{still}); killing it. "
        f"What it was doing: {state.log_for('supervisor')}"
    )


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
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).send_signal(signal.SIGTERM)
        grace = app.settings.stop_timeout_s * max(1, len(snapshot.get("services", {}))) + 10
        if not state.wait_until_unlocked(grace) and pid:
            app.warn(_stuck_supervisor(state, grace))
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
            state.wait_until_unlocked(5)
        leftovers = stop_recorded(crash.recorded_processes(snapshot), crash.GRACE_S)
        if leftovers:
            app.info(f"stopped {len(leftovers)} process(es) the supervisor left behind")
    elif crash.detect(state) is not None:
        _recover_from_crash(app, state)
    else:
        app.info("devenv is not running")
    if snapshot.get("facts", {}).get("runtime") == "docker":
        from devenv.runtime import docker as docker_runtime

        docker_runtime.clean_up(state, volumes)
    if volumes:
        shutil.rmtree(state.data, ignore_errors=True)
        app.info(f"deleted data under {state.data}")
    app.info("[green]down[/]")
