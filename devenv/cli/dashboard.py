"""`devenv dashboard`: the deployed stack's CloudWatch dashboard, live in the browser, from either target.

It serves a page on 127.0.0.1 until Ctrl-C. Exit 2 when the target has no deployed stack (nothing to
show), 4 when the port asked for is taken.
"""

from __future__ import annotations

import threading
import webbrowser

import typer

from devenv.cli.application import Application
from devenv.cli.options import TargetOption
from devenv.dashboard.data import Reader
from devenv.dashboard.server import HOST, server
from devenv.errors import PortInUseError
from devenv.runtime.ports import free_port, is_free
from devenv.runtime.state import StateDir
from devenv.targets import aws_api
from devenv.targets.endpoints import Target


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)


def dashboard(
    ctx: typer.Context,
    target: Target = TargetOption,
    port: int = typer.Option(0, "--port", min=0, max=65535, help="port on 127.0.0.1 [a free one]"),
    open_browser: bool = typer.Option(True, "--open/--no-open", help="open the page in your browser"),
) -> None:
    """Serve the stack's CloudWatch dashboard, services, alarms and scaling on 127.0.0.1, refreshed live."""
    app: Application = ctx.obj
    api = aws_api.connect(target.value, StateDir(app.settings.state_dir), app.settings.region)
    reader = Reader(api)
    name = reader.dashboard_name()  # fails here, clearly, when nothing is deployed
    if port and not is_free(port):
        raise PortInUseError(
            f"port {port} on {HOST} is in use", "pass another --port, or none for a free one"
        )
    web = server(reader, port or free_port())
    url = f"http://{HOST}:{web.config.port}/"
    typer.echo(f"dashboard {name} of the {target.value} target: {url} (Ctrl-C stops it)")
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    web.run()
