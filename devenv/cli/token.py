"""`devenv token create|list|revoke`: proxy tokens through the target's management API.

The target is the running `devenv up` by default (its ALB mirror and the stack's management token), or
any proxy with `--url`/`--management-token`, or the deployed stack with `--target aws`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from devenv.cli.application import Application, OutputFormat, application
from devenv.cli.options import (
    ManagementTokenOption,
    OutputOption,
    ProjectApiKeyOption,
    TargetOption,
    UrlOption,
    with_options,
)
from devenv.errors import NotRunningError, TargetError
from devenv.runtime.state import StateDir
from devenv.targets.endpoints import Target, resolve
from devenv.targets.management import ManagementClient

token_app = typer.Typer(help="Proxy tokens (the client's `sk-...` keys).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


def management_client(
    app: Application, target: Target, url: str | None, management_token: str | None
) -> ManagementClient:
    """The target's management API; NotRunningError (exit 7) when the local stack is not up."""
    state = StateDir(app.settings.state_dir)
    if target is Target.local and not url and not state.supervisor_running():
        raise NotRunningError("the local stack is not running", "start it with `devenv up -d`, or pass --url")
    endpoint = resolve(target, state, url=url, management_token=management_token, region=app.settings.region)
    if not endpoint.management_token:
        raise TargetError(
            f"no management token for {endpoint.url}", "pass --management-token or set MANAGEMENT_TOKEN"
        )
    return ManagementClient(endpoint.url, endpoint.management_token)


def _management_api(
    ctx: typer.Context,
    target: Target = TargetOption,
    url: str | None = UrlOption,
    management_token: str | None = ManagementTokenOption,
    output: OutputFormat = OutputOption,
) -> dict[str, Any]:
    """The options every token command takes, declared once: the command gets `app` and `client`."""
    app = application(ctx, output)
    return {"app": app, "client": management_client(app, target, url, management_token)}


@token_app.command("create")
@with_options(_management_api)
def create(
    app: Application,
    client: ManagementClient,
    project: str = typer.Option(
        "default", "--project", "-p", help="project name; created if it does not exist"
    ),
    duration_minutes: int = typer.Option(
        1440, "--duration-minutes", min=1, max=525600, help="token lifetime"
    ),
    max_requests: int | None = typer.Option(
        None, "--max-requests", min=0, help="request budget (default: unlimited)"
    ),
    api_key: str = ProjectApiKeyOption,
) -> None:
    """Create a token for PROJECT and print it (with --output json: token, token_id, project_id, expires_at)."""
    found = client.project_named(project, api_key)
    created = client.create_token(found["id"], duration_minutes, max_requests)
    result = {
        "token": created["token"],
        "token_id": created["id"],
        "project_id": found["id"],
        "expires_at": created.get("expires_at"),
    }
    if app.json_output:
        app.emit_json(result)
        return
    app.out.print(result["token"], highlight=False)
    app.err.print(
        f"project {project} ({found['id']}), expires {result['expires_at']}. Try:\n"
        f"  curl {client.url}/v1/chat/completions -H 'Authorization: Bearer {result['token']}' "
        '-H \'Content-Type: application/json\' -d \'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}\'',
        highlight=False,
        markup=False,
    )


@token_app.command("list")
@with_options(_management_api)
def list_tokens(
    app: Application,
    client: ManagementClient,
    project: str | None = typer.Option(None, "--project", "-p", help="only this project's tokens"),
) -> None:
    """Every token (the secret itself is never shown again: its hint is), with its state and usage."""
    names = {str(p["id"]): str(p.get("name", "")) for p in client.projects()}
    project_id = None
    if project is not None:
        project_id = next((pid for pid, name in names.items() if name == project), None)
        if project_id is None:
            raise TargetError(
                f"no project named {project!r} on {client.url}",
                f"the projects are: {', '.join(sorted(names.values())) or 'none'}",
            )
    now = dt.datetime.now(dt.UTC)
    tokens = [
        {**token, "project": names.get(str(token["project_id"])), "state": token_state(token, now)}
        for token in client.tokens(project_id)
    ]
    if app.json_output:
        app.emit_json({"tokens": tokens})
        return
    table = Table(
        "id", "project", "token", "state", "requests", "expires (UTC)", title=f"tokens on {client.url}"
    )
    for token in tokens:
        used, budget = token.get("request_count", 0), token.get("max_requests")
        cells = (
            str(token["id"]),
            str(token["project"] or token["project_id"]),
            str(token.get("token_hint", "")),
            token["state"],
            f"{used}/{budget}" if budget else str(used),
            _utc(token.get("expires_at")),
        )
        table.add_row(*map(Text, cells))
    app.out.print(table)


@token_app.command("revoke")
@with_options(_management_api)
def revoke(
    app: Application,
    client: ManagementClient,
    token_id: str = typer.Argument(..., help="the token's id (see `devenv token list`)", show_default=False),
) -> None:
    """Revoke a token: the proxy refuses it from now on (401 token_inactive)."""
    client.revoke_token(token_id)
    if app.json_output:
        app.emit_json({"revoked": token_id})
        return
    app.out.print(f"revoked token {token_id}", highlight=False, markup=False)


def _utc(timestamp: str | None) -> str:
    if not timestamp:
        return "never"
    return dt.datetime.fromisoformat(timestamp).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def token_state(token: dict[str, Any], now: dt.datetime) -> str:
    """revoked, expired or active: what the proxy would answer a request with this token."""
    if not token.get("is_active", True):
        return "revoked"
    expires = token.get("expires_at")
    if expires and dt.datetime.fromisoformat(str(expires)) <= now:
        return "expired"
    return "active"
