"""The `devenv` command: a Typer app assembled from one module per command group.

Each module in COMMAND_MODULES exposes `register(app)`. `main` is the one place that maps
devenv's errors to messages and exit codes.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer
from rich.console import Console

from devenv.cli.application import Application, OutputFormat
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
]

app = typer.Typer(
    name="devenv",
    help="The LLM Proxy's AWS stack on your machine, and the harness that tests it on either target.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    state_dir: Path | None = typer.Option(
        None,
        "--state-dir",
        envvar="DEVENV_STATE_DIR",
        help="where devenv keeps data, logs, pids and ports [default: .devenv]",
    ),
) -> None:
    """Load the settings once; every command reads them from the Application in ctx.obj."""
    ctx.obj = Application(settings=load_settings(overrides={"state_dir": state_dir}))


def application(
    ctx: typer.Context, output: OutputFormat = OutputFormat.text, quiet: bool = False
) -> Application:
    """The Application for a command, with that command's output choices applied."""
    app_obj: Application = ctx.obj
    app_obj.output = output
    app_obj.quiet = quiet
    return app_obj


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    """Entry point: run the app and turn DevenvError into a message and its exit code."""
    try:
        exit_code = app(standalone_mode=False)
    except DevenvError as exc:
        err = Console(stderr=True)
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err.print(f"[yellow]fix:[/] {exc.hint}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        Console(stderr=True).print("aborted")
        sys.exit(1)
    except Exception as exc:  # click's own usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(exit_code if isinstance(exit_code, int) else 0)
