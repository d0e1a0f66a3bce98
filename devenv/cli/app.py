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
from typing import Any

import typer
from typer._click.exceptions import NoSuchOption
from typer.core import TyperArgument, TyperGroup

from devenv.cli.application import Application, print_error
from devenv.config import load_settings
from devenv.errors import DevenvError

COMMAND_MODULES = [
    "devenv.cli.lifecycle",
    "devenv.cli.status",
    "devenv.cli.logs",
    "devenv.cli.doctor",
    "devenv.cli.token",
    "devenv.cli.deploy",
    "devenv.cli.loadtest",
    "devenv.cli.stack",
    "devenv.cli.secret",
    "devenv.cli.config",
    "devenv.cli.setup_wizard",
    "devenv.cli.failover",
    "devenv.cli.dashboard",
    "devenv.cli.watch",
]


def _argument_type(argument: TyperArgument, ctx: Any) -> str | None:
    """An argument with a metavar (`NAME`) shows only that, as options do; Typer would append its Python
    type (`NAME <list[str]>`)."""
    return None if argument.metavar is not None else argument.display_type(ctx)


TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign,assignment]

GLOBAL_OPTIONS = ("--state-dir", "--version")


class _Root(TyperGroup):
    """The root group: a global option given after the command is a usage error that says where it goes."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NoSuchOption as exc:
            if exc.option_name in GLOBAL_OPTIONS and exc.ctx is not None:
                command = exc.ctx.command_path.removeprefix(f"{ctx.info_name} ")
                exc.message = (
                    f"No such option for {command}: {exc.option_name} is a global option,"
                    f" put it before the command: devenv {exc.option_name} ... {command}"
                )
            raise


app = typer.Typer(
    name="devenv",
    cls=_Root,
    help="The LLM Proxy's AWS stack on your machine, and the harness that tests it on either target.",
    no_args_is_help=True,
    context_settings={"max_content_width": 120},  # click's 80 wraps every option's help
    rich_markup_mode=None,  # help as written: no markup eats a "[default: ...]"
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
        print_error(exc)
        sys.exit(exc.exit_code)
