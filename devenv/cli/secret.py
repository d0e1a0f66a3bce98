"""`devenv secret set|get|list`: the stack's secrets in Secrets Manager on the target.

Values are never printed unless `--reveal` is given.
"""

from __future__ import annotations

import typer

from devenv.cli.application import Application
from devenv.cli.options import stack_settings, with_options
from devenv.stack_names import SECRETS
from devenv.targets.stack_settings import Store, get_secret, list_secrets, put_secret, secret_name

HIDDEN = "********"
SecretNameArgument = typer.Argument(..., help=f"one of: {', '.join(SECRETS)}")

secret_app = typer.Typer(
    help="Secrets in Secrets Manager (values hidden unless --reveal).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(secret_app, name="secret")


@secret_app.command("set")
@with_options(stack_settings)
def secret_set(
    app: Application,
    store: Store,
    name: str = SecretNameArgument,
    value: str | None = typer.Argument(
        None, help="the value; omit it to be prompted (keeps it out of history)"
    ),
) -> None:
    """Set a secret's value (creating the secret if the stack has not)."""
    secret_name(name)
    if value is None:
        value = typer.prompt(f"value for {name}", hide_input=True, confirmation_prompt=True, err=True)
    result = put_secret(store, name, value)
    if app.json_output:
        app.emit_json({**result, "target": store.target.value})
        return
    verb = "created" if result["created"] else "updated"
    app.info(f"{verb} secret {result['name']} on {store.where} (value not shown)")


@secret_app.command("get")
@with_options(stack_settings)
def secret_get(
    app: Application,
    store: Store,
    name: str = SecretNameArgument,
    reveal: bool = typer.Option(False, "--reveal", help="print the value itself"),
) -> None:
    """Show a secret (its value only with --reveal)."""
    result = get_secret(store, name)
    shown = result["value"] if reveal else HIDDEN
    if app.json_output:
        app.emit_json(
            {
                "name": result["name"],
                "arn": result["arn"],
                "value": shown,
                "revealed": reveal,
                "target": store.target.value,
            }
        )
        return
    if reveal:
        app.out.print(shown, highlight=False, markup=False)
    else:
        app.out.print(f"{result['name']}: {HIDDEN} ({len(result['value'])} characters; --reveal shows it)")


@secret_app.command("list")
@with_options(stack_settings)
def secret_list(app: Application, store: Store) -> None:
    """The stack's secrets and whether each exists on the target (never their values)."""
    rows = list_secrets(store)
    if app.json_output:
        app.emit_json(rows)
        return
    for row in rows:
        app.out.print(f"{row['key']:22} {row['name']:34} {'set' if row['arn'] else '-'}")
