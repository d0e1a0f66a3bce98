"""`devenv setup`: an interactive wizard for the config values and secrets the stack needs on a target."""

from __future__ import annotations

import secrets as token_source

import typer

from devenv.cli.application import Application
from devenv.cli.options import stack_settings, with_options
from devenv.stack_names import PARAMETERS, SECRETS
from devenv.targets.stack_settings import PARAMETER_CHECKS, Store, list_parameters, put_parameter, put_secret

# Offered when the target has no value yet, in the order asked.
DEFAULTS = {
    "upstream-url": "https://api.openai.com",
    "log-level": "info",
    "cache-enabled": "true",
    "rate-limit-rpm": "0",
}


def register(app: typer.Typer) -> None:
    app.command("setup")(setup)


@with_options(stack_settings)
def setup(app: Application, store: Store) -> None:
    """Interactive wizard: the config values and secrets the stack needs, current values as defaults."""
    current = {row["key"]: row["value"] for row in list_parameters(store)}
    changed: list[str] = []
    for key, default in DEFAULTS.items():
        before = current.get(key)
        while True:
            answer = typer.prompt(key, default=before or default, err=True).strip()
            problem = PARAMETER_CHECKS[key](answer)
            if problem is None:
                break
            app.err.print(f"[red]{key} {problem}[/]")
        if answer != before:
            put_parameter(store, key, answer)
            changed.append(PARAMETERS[key])
    token_prompt = "management-token (blank keeps the current one, 'generate' makes a new one)"
    answer = typer.prompt(token_prompt, default="", show_default=False, hide_input=True, err=True).strip()
    if answer:
        value = token_source.token_urlsafe(36) if answer == "generate" else answer
        put_secret(store, "management-token", value)
        changed.append(SECRETS["management-token"])
    key_prompt = "openai-api-key (blank skips)"
    answer = typer.prompt(key_prompt, default="", show_default=False, hide_input=True, err=True).strip()
    if answer:
        put_secret(store, "openai-api-key", answer)
        changed.append(SECRETS["openai-api-key"])
    if app.json_output:
        app.emit_json({"target": store.target.value, "changed": changed})
        return
    summary = ", ".join(changed) if changed else "nothing"
    app.info(f"setup on {store.where}: changed {summary}; restart tasks to apply")
