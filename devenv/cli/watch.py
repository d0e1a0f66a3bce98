"""`devenv watch`: live reload of the running stack (also `devenv up --watch`).

Each saved change to the llmproxy source the tasks run rolls the proxy and dispatcher services through
the emulator's ECS API (devenv.targets.live_reload); this command prints what each roll did, a new task's
start-up error included, until Ctrl-C (the stack keeps running).
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import typer

from devenv.cli.application import Application, application
from devenv.cli.options import QuietOption
from devenv.errors import DevenvError, NotRunningError, UsageError
from devenv.runtime.state import StateDir

DOCKER_UNSUPPORTED = UsageError(
    "live reload rolls native tasks; this stack runs its tasks as containers (--runtime docker), whose "
    "image a change does not rebuild",
    "run the stack with `--runtime native` to watch; with Docker, rebuild the image and run "
    "`aws ecs update-service --force-new-deployment`",
)


def register(app: typer.Typer) -> None:
    app.command()(watch)


def watch(ctx: typer.Context, quiet: bool = QuietOption) -> None:
    """Roll the running stack's llmproxy services (proxy, dispatcher) on every saved change to their
    source, as `aws ecs update-service --force-new-deployment` does; Ctrl-C stops watching, not the stack.

    The source is the llmproxy package the tasks run (the llmproxy_dir setting; by default the one devenv
    imports: a checkout's llmproxy/). A change that breaks start-up leaves the old tasks serving and
    prints the new task's error.
    """
    app = application(ctx, quiet=quiet)
    watch_running_stack(app, StateDir(app.settings.state_dir))


def watch_running_stack(app: Application, state: StateDir) -> None:
    """Watch and roll in this process until SIGINT/SIGTERM, against the stack the state dir describes."""
    if not state.supervisor_running():
        raise NotRunningError(
            "devenv is not running",
            "start the stack with `devenv up -d`, then `devenv watch` (or `devenv up --watch`)",
        )
    facts = state.read().get("facts", {})
    if facts.get("runtime") == "docker":
        raise DOCKER_UNSUPPORTED
    if not facts.get("llmproxy_source") or not facts.get("alb_url"):
        raise UsageError(
            "the running stack has no ECS services to roll (was it started with --infra-only?)",
            "start the whole stack: `devenv down`, then `devenv up -d`",
        )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    run(app, state, facts, stop)
    app.info("stopped watching; the stack keeps running")


def run(app: Application, state: StateDir, facts: dict[str, Any], stop: threading.Event) -> None:
    """The watch loop against the stack of `facts` (the supervisor's), until `stop`; an emulator that
    stops answering ends it with a clear error."""
    from botocore.exceptions import BotoCoreError, ClientError

    from devenv.services import llmproxy
    from devenv.targets import live_reload, local

    source = Path(facts["llmproxy_source"])
    if llmproxy.installed_copy(source):
        app.info(
            f"[yellow]the tasks run llmproxy installed at {source} (from a wheel): edits there are watched, "
            "but a reinstall replaces them; set llmproxy_dir to a checkout's llmproxy/ to develop[/]"
        )
    ecs = local.client("ecs", facts["aws_env"]["AWS_ENDPOINT_URL"], facts["region"])
    try:
        live_reload.watch(
            ecs, source, state.logs, app.settings.watch_debounce_ms, stop, lambda line: _say(app, line)
        )
    except (BotoCoreError, ClientError) as exc:
        if stop.is_set():
            return
        raise NotRunningError(
            f"the local cloud stopped answering while watching: {exc}",
            "see `devenv status`; start the stack again with `devenv up -d`",
        ) from None


def run_beside_up(app: Application, state: StateDir, facts: dict[str, Any], stop: threading.Event) -> None:
    """`up --watch`: the watch loop on a thread of the supervisor; its end is said, never a traceback."""
    try:
        run(app, state, facts, stop)
    except DevenvError as exc:
        app.err.print(f"[red]watching stopped:[/] {exc.message} ({exc.hint})", highlight=False)


def _say(app: Application, line: str) -> None:
    app.progress_console.print(
        f"{time.strftime('%H:%M:%S')} {line}", markup=False, highlight=False, emoji=False
    )
