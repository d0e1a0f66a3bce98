"""`devenv config set|get|list`: the stack's plain config in SSM Parameter Store on the target.

Tasks read these values at start: redeploy or restart tasks to apply a change.
"""

from __future__ import annotations

import typer

from devenv.cli.application import Application
from devenv.cli.options import stack_settings, with_options
from devenv.stack_names import PARAMETERS
from devenv.targets.stack_settings import Store, get_parameter, list_parameters, parameter_name, put_parameter

ConfigNameArgument = typer.Argument(..., help=f"one of: {', '.join(PARAMETERS)}")

config_app = typer.Typer(help="Plain config in SSM Parameter Store.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("set")
@with_options(stack_settings)
def config_set(
    app: Application, store: Store, name: str = ConfigNameArgument, value: str = typer.Argument(...)
) -> None:
    """Set a config value (tasks read it at start: redeploy or restart tasks to apply)."""
    parameter_name(name)
    result = put_parameter(store, name, value)
    if app.json_output:
        app.emit_json({**result, "target": store.target.value})
        return
    app.info(f"set {result['name']} = {value} on {store.where}")


@config_app.command("get")
@with_options(stack_settings)
def config_get(app: Application, store: Store, name: str = ConfigNameArgument) -> None:
    """Print a config value."""
    result = get_parameter(store, name)
    if app.json_output:
        app.emit_json({**result, "target": store.target.value})
        return
    app.out.print(result["value"], highlight=False, markup=False)


@config_app.command("list")
@with_options(stack_settings)
def config_list(app: Application, store: Store) -> None:
    """Every config value of the stack on the target."""
    rows = list_parameters(store)
    if app.json_output:
        app.emit_json(rows)
        return
    for row in rows:
        value = row["value"] if row["value"] is not None else "(not set)"
        app.out.print(f"{row['key']:16} {row['name']:28} {value}", highlight=False, markup=False)
