"""`devenv token create|list|revoke` against a real proxy process (tests/conftest.py's `local_target`),
through the real `devenv` command."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from devenv.cli.token import token_state
from tests.conftest import MANAGEMENT_TOKEN, ProxyTarget
from tests.devenv.cli.conftest import DevenvCli


def token_cli(cli: DevenvCli, target: ProxyTarget, *args: str, token: str = MANAGEMENT_TOKEN) -> Any:
    return cli.run(
        "token",
        *args,
        "--url",
        target.proxy_url,
        "--management-token",
        token,
        timeout=60,
        extra_env={"COLUMNS": "200"},  # the table's rows on one line each
    )


def json_of(cli: DevenvCli, target: ProxyTarget, *args: str) -> Any:
    done = token_cli(cli, target, *args, "--output", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def models_status(target: ProxyTarget, token: str) -> tuple[int, str]:
    """What the proxy answers a client with this token."""
    request = urllib.request.Request(
        target.proxy_url + "/v1/models", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, str(json.loads(exc.read()).get("code"))


@pytest.mark.slow
def test_list_shows_created_tokens_and_revoke_makes_the_proxy_refuse_one(
    devenv_cli: DevenvCli, local_target: ProxyTarget
) -> None:
    project = f"cli-{uuid.uuid4().hex[:8]}"
    first = json_of(devenv_cli, local_target, "create", "--project", project, "--max-requests", "5")
    second = json_of(devenv_cli, local_target, "create", "--project", project)
    assert first["project_id"] == second["project_id"]  # the project is created once, then found
    other = json_of(devenv_cli, local_target, "create", "--project", f"{project}-other")

    listed = json_of(devenv_cli, local_target, "list", "--project", project)["tokens"]
    assert {t["id"] for t in listed} == {first["token_id"], second["token_id"]}  # not the other project's
    assert all(t["state"] == "active" and t["project"] == project for t in listed)
    assert all("token" not in t for t in listed)  # the secret is never listed
    assert {t["id"] for t in json_of(devenv_cli, local_target, "list")["tokens"]} >= {
        first["token_id"],
        other["token_id"],
    }

    assert models_status(local_target, first["token"])[0] == 200
    revoked = json_of(devenv_cli, local_target, "revoke", first["token_id"])
    assert revoked == {"revoked": first["token_id"]}
    states = {t["id"]: t["state"] for t in json_of(devenv_cli, local_target, "list", "-p", project)["tokens"]}
    assert states == {first["token_id"]: "revoked", second["token_id"]: "active"}
    assert models_status(local_target, first["token"]) == (401, "token_inactive")
    assert models_status(local_target, second["token"])[0] == 200

    table = token_cli(devenv_cli, local_target, "list", "--project", project)
    assert table.returncode == 0, table.stderr
    rows = {line.split()[1]: line for line in table.stdout.splitlines() if first["token_id"] in line}
    assert len(rows) == 1 and all("revoked" in row and "1/5" in row for row in rows.values()), table.stdout
    text = token_cli(devenv_cli, local_target, "revoke", second["token_id"])
    assert text.returncode == 0 and f"revoked token {second['token_id']}" in text.stdout


def test_mistakes_are_named_with_the_api_status_and_code(
    devenv_cli: DevenvCli, local_target: ProxyTarget
) -> None:
    unknown = str(uuid.uuid4())
    missing = token_cli(devenv_cli, local_target, "revoke", unknown)
    assert missing.returncode == 2, missing.stderr
    assert (
        f"DELETE /manage/tokens/{unknown} on {local_target.proxy_url} answered 404: not_found"
        in missing.stderr
    )
    assert "Traceback" not in missing.stderr

    refused = token_cli(devenv_cli, local_target, "list", token="wrong-token")
    assert refused.returncode == 2
    assert "refused the management token (401)" in refused.stderr and "MANAGEMENT_TOKEN" in refused.stderr

    no_project = token_cli(devenv_cli, local_target, "list", "--project", "no-such-project")
    assert no_project.returncode == 2 and "no project named 'no-such-project'" in no_project.stderr

    down = devenv_cli.run("token", "list")  # no --url and no `devenv up`: the local stack is not running
    assert down.returncode == 7 and "the local stack is not running" in down.stderr
    assert "Traceback" not in down.stderr


def test_a_token_past_its_expiry_is_listed_as_expired() -> None:
    now = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
    assert token_state({"is_active": True, "expires_at": "2026-12-03T11:59:00+00:00"}, now) == "expired"
    assert token_state({"is_active": True, "expires_at": "2026-12-03T12:01:00Z"}, now) == "active"
    assert token_state({"is_active": False, "expires_at": "2026-12-03T12:01:00Z"}, now) == "revoked"
    assert token_state({"is_active": True, "expires_at": None}, now) == "active"
