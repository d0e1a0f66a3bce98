"""The `devenv` command: a Typer app assembled from one module per command group.

Each module in COMMAND_MODULES exposes `register(app)`. Typer reports usage mistakes itself (a bad
flag, command or value: its usage message and exit 2); `main` is the one place that maps devenv's own
errors to messages and exit codes.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from pathlib import Path

import typer
from rich.console import Console

from devenv.cli.application import Application
from devenv.config import load_settings
from devenv.errors import DevenvError

COMMAND_MODULES = [
    "devenv.cli.lifecycle",
    "devenv.cli.doctor",
    "devenv.cli.token",
    "devenv.cli.deploy",
    "devenv.cli.loadtest",
    "devenv.cli.stack",
    "devenv.cli.settings_store",
    "devenv.cli.failover",
    "devenv.cli.dashboard",
]

app = typer.Typer(
    name="devenv",
    help="The LLM Proxy's AWS stack on your machine, and the harness that tests it on either target.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"devenv {importlib.metadata.version('devenv')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    state_dir: Path | None = typer.Option(
        None,
        "--state-dir",
        envvar="DEVENV_STATE_DIR",
        help="where devenv keeps data, logs, pids and ports [default: .devenv]",
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="print devenv's version and exit"
    ),
) -> None:
    """Load the settings once; every command reads them from the Application in ctx.obj."""
    ctx.obj = Application(settings=load_settings(overrides={"state_dir": state_dir}))


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    """Entry point: Typer's standalone mode prints usage errors (exit 2) and honours typer.Exit;
    a DevenvError becomes its message, its fix and its exit code."""
    try:
        app(prog_name="devenv")
    except DevenvError as exc:
        err = Console(stderr=True)
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err.print(f"[yellow]fix:[/] {exc.hint}", highlight=False)
        sys.exit(exc.exit_code)
