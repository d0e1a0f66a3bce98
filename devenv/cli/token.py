"""`devenv token create`: a proxy token for a project, through the running proxy's management API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import typer

from devenv.cli.application import OutputFormat, application
from devenv.cli.options import OutputOption
from devenv.errors import DevenvError, NotRunningError
from devenv.runtime.state import StateDir
from devenv.services import llmproxy

token_app = typer.Typer(help="Proxy tokens (the client's `sk-...` keys).", no_args_is_help=True)

LOCAL_UPSTREAM_KEY = "sk-devenv-mock-upstream"


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


def call(base_url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        base_url.rstrip("/") + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise DevenvError(
            f"{method} {path} answered {exc.code}: {detail}", "check `devenv logs proxy`"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise NotRunningError(
            f"the proxy at {base_url} does not answer ({exc})", "start it with `devenv up -d`"
        ) from None


def find_or_create_project(base_url: str, token: str, name: str, api_key: str) -> dict[str, Any]:
    listing = call(base_url, token, "GET", "/manage/projects")
    projects = listing.get("projects", listing) if isinstance(listing, dict) else listing
    for project in projects or []:
        if project.get("name") == name:
            return dict(project)
    return dict(call(base_url, token, "POST", "/manage/projects", {"name": name, "api_key": api_key}))


@token_app.command("create")
def create(
    ctx: typer.Context,
    project: str = typer.Option(
        "default", "--project", "-p", help="project name; created if it does not exist"
    ),
    duration_minutes: int = typer.Option(
        1440, "--duration-minutes", min=1, max=525600, help="token lifetime"
    ),
    max_requests: int | None = typer.Option(
        None, "--max-requests", min=0, help="request budget (default: unlimited)"
    ),
    api_key: str = typer.Option(
        LOCAL_UPSTREAM_KEY,
        "--api-key",
        envvar="DEVENV_PROJECT_API_KEY",
        help="the upstream key for a new project",
    ),
    output: OutputFormat = OutputOption,
) -> None:
    """Create a token for PROJECT and print it (with --output json: token, token_id, project_id, expires_at)."""
    app = application(ctx, output)
    state = StateDir(app.settings.state_dir)
    target = llmproxy.management(state)
    if not state.supervisor_running() or not target["url"]:
        raise NotRunningError("the local stack is not running", "start it with `devenv up -d`")
    found = find_or_create_project(target["url"], target["token"], project, api_key)
    body: dict[str, Any] = {"project_id": found["id"], "duration_minutes": duration_minutes}
    if max_requests is not None:
        body["max_requests"] = max_requests
    created = call(target["url"], target["token"], "POST", "/manage/tokens", body)
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
        f"  curl {target['url']}/v1/chat/completions -H 'Authorization: Bearer {result['token']}' "
        '-H \'Content-Type: application/json\' -d \'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}\'',
        highlight=False,
    )
