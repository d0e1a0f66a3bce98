"""`devenv dashboard`: the deployed stack's CloudWatch dashboard, live in the browser, from either target.

Against the local stack, `devenv up` already serves the page (the dashboard_port setting): the command
then prints and opens that URL. Otherwise (`--target aws`, or `--port`) it serves a page on 127.0.0.1
until Ctrl-C. `--start/--end` open it at a time window (a load-test or failover report names them).
Exit 7 when the local stack is not running, 2 when the target has no deployed stack (nothing to show),
4 when the port asked for is taken.
"""

from __future__ import annotations

import threading
import webbrowser

import typer

from devenv.cli.application import Application
from devenv.cli.options import TargetOption
from devenv.errors import NotRunningError, PortInUseError, TargetError, UsageError
from devenv.runtime.ports import free_port, is_free
from devenv.runtime.state import StateDir
from devenv.targets import aws_api, dashboard_link
from devenv.targets.endpoints import Target


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)


def dashboard(
    ctx: typer.Context,
    target: Target = TargetOption,
    port: int = typer.Option(
        0, "--port", min=0, max=65535, help="serve a page of its own on this port [a free one]"
    ),
    start: int | None = typer.Option(
        None, "--start", min=1, help="open the page at this time (epoch seconds)"
    ),
    end: int | None = typer.Option(None, "--end", min=1, help="... until this time (epoch seconds) [now]"),
    open_browser: bool = typer.Option(True, "--open/--no-open", help="open the page in your browser"),
) -> None:
    """Serve the stack's CloudWatch dashboard, services, alarms and scaling on 127.0.0.1, refreshed live."""
    from devenv.dashboard.data import Reader
    from devenv.dashboard.server import HOST, server  # the web server loads only for a page of its own

    app: Application = ctx.obj
    query = _window_query(start, end)
    state = StateDir(app.settings.state_dir)
    served = dashboard_link.served(state) if target is Target.local and not port else None
    if served:
        url = f"{served}{query}"
        typer.echo(f"dashboard of the local target, served by `devenv up`: {url}")
        if open_browser:
            webbrowser.open(url)
        return
    try:
        api = aws_api.connect(target.value, state, app.settings.region)
    except TargetError as exc:  # locally: no emulator, so no stack running
        raise NotRunningError(exc.message, exc.hint) from exc
    reader = Reader(api, logs_dir=state.logs if target is Target.local else None)
    name = reader.dashboard_name()  # fails here, clearly, when nothing is deployed
    if port and not is_free(port):
        raise PortInUseError(
            f"port {port} on {HOST} is in use", "pass another --port, or none for a free one"
        )
    web = server(reader, port or free_port())
    url = f"http://{HOST}:{web.config.port}/{query}"
    typer.echo(f"dashboard {name} of the {target.value} target: {url} (Ctrl-C stops it)")
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    web.run()


def _window_query(start: int | None, end: int | None) -> str:
    """The page's ?start=&end= (empty: the last hour, live)."""
    if start is None:
        if end is not None:
            raise UsageError("--end needs --start", "pass both, in epoch seconds, or neither")
        return ""
    if end is not None and end <= start:
        raise UsageError(f"--end {end} is not after --start {start}", "pass an end later than the start")
    return f"?start={start}" + (f"&end={end}" if end is not None else "")
