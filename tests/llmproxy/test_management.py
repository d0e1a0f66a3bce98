"""The management API: auth, CRUD flows, validation errors, audit listing, and a schemathesis run
against the OpenAPI document the proxy serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.llmproxy.conftest import MANAGEMENT_TOKEN, UPSTREAM_KEY, Proxy, Stack, run_sql, wait_until


def test_management_token_is_required(proxy: Proxy) -> None:
    assert requests.get(proxy.url + "/manage/projects", timeout=5).status_code == 401
    wrong = requests.get(proxy.url + "/manage/projects", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert (wrong.status_code, wrong.json()["code"]) == (401, "unauthorized")


def test_projects_and_tokens_lifecycle(proxy: Proxy) -> None:
    name = f"lifecycle-{uuid.uuid4().hex[:8]}"
    created = proxy.manage("POST", "/manage/projects", {"name": name, "api_key": UPSTREAM_KEY})
    assert created.status_code == 201
    project = created.json()
    assert project["api_key"] != UPSTREAM_KEY and UPSTREAM_KEY not in project["api_key"]  # obfuscated
    stored = run_sql(proxy.dsn, "SELECT api_key FROM projects WHERE id = $1", project["id"])[0]["api_key"]
    assert UPSTREAM_KEY not in stored  # encrypted at rest
    assert proxy.manage("POST", "/manage/projects", {"name": name, "api_key": "x"}).status_code == 409
    listed = proxy.manage("GET", "/manage/projects").json()
    assert project["id"] in {p["id"] for p in listed}

    token = proxy.create_token(project["id"], duration_minutes=5, max_requests=10)
    assert token["token"].startswith("sk-") and len(token["token"]) == 25
    stored_token = run_sql(proxy.dsn, "SELECT token FROM tokens WHERE id = $1", token["id"])[0]["token"]
    assert token["token"] not in stored_token  # hashed
    one = proxy.manage("GET", f"/manage/tokens/{token['id']}").json()
    assert one["max_requests"] == 10 and "token" not in one
    by_project = proxy.manage("GET", "/manage/tokens", params={"projectId": project["id"]}).json()
    assert [t["id"] for t in by_project] == [token["id"]]
    patched = proxy.manage("PATCH", f"/manage/tokens/{token['id']}", {"max_requests": 0})
    assert patched.status_code == 200 and patched.json()["max_requests"] is None

    revoked = proxy.manage("POST", f"/manage/projects/{project['id']}/tokens/revoke")
    assert revoked.json() == {"revoked": 1}
    assert proxy.call(token["token"]).json()["code"] == "token_inactive"

    assert proxy.manage("PATCH", f"/manage/projects/{project['id']}", {"is_active": False}).status_code == 200
    refused = proxy.manage("POST", "/manage/tokens", {"project_id": project["id"], "duration_minutes": 5})
    assert (refused.status_code, refused.json()["code"]) == (403, "project_inactive")


def test_invalid_input_gets_a_clear_4xx(proxy: Proxy) -> None:
    cases = [
        ("POST", "/manage/projects", {"name": ""}),
        ("POST", "/manage/projects", {"name": "a", "api_key": "k", "extra": 1}),
        ("POST", "/manage/projects", {"name": "a", "api_key": "sk-1\r\nX-Injected: 1"}),
        ("POST", "/manage/tokens", {"project_id": "not-a-uuid", "duration_minutes": 5}),
        ("POST", "/manage/tokens", {"project_id": str(uuid.uuid4()), "duration_minutes": 0}),
        ("POST", "/manage/tokens", {"project_id": str(uuid.uuid4()), "duration_minutes": 525601}),
        ("POST", "/manage/cache/purge", {"method": "DELETE", "url": "/v1/models"}),
    ]
    for method, path, body in cases:
        response = proxy.manage(method, path, body)
        assert response.status_code == 400, (path, body, response.text)
        assert response.json()["code"] == "invalid_request" and response.json()["description"]
    garbage = requests.post(
        proxy.url + "/manage/projects",
        data=b"{not json",
        headers={"Authorization": f"Bearer {MANAGEMENT_TOKEN}"},
        timeout=5,
    )
    assert garbage.status_code == 400
    assert (
        proxy.manage(
            "POST", "/manage/tokens", {"project_id": str(uuid.uuid4()), "duration_minutes": 5}
        ).status_code
        == 404
    )
    assert proxy.manage("GET", "/manage/projects/not-a-uuid").status_code == 404
    assert proxy.manage("GET", "/manage/audit", params={"page_size": 101}).status_code == 400


def test_audit_listing_paginates_and_filters(stack: Stack, proxy: Proxy) -> None:
    stack.dispatcher(proxy.env)
    token = proxy.token()
    request_ids = [f"audit-{uuid.uuid4().hex}" for _ in range(5)]
    for request_id in request_ids:
        proxy.call(token, headers={"X-Request-ID": request_id})

    def listed() -> dict[str, Any]:
        page = proxy.manage("GET", "/manage/audit", params={"action": "proxy.request", "page_size": 2}).json()
        return page if page["pagination"]["total"] >= 5 else {}

    page = wait_until(listed, timeout=30, what="audit events")
    assert len(page["events"]) == 2
    assert page["pagination"]["page_size"] == 2 and page["pagination"]["total_pages"] >= 3
    one = proxy.manage("GET", "/manage/audit", params={"request_id": request_ids[0]}).json()
    assert [e["request_id"] for e in one["events"]] == [request_ids[0]]
    event = proxy.manage("GET", f"/manage/audit/{one['events'][0]['id']}").json()
    assert event["outcome"] == "success" and event["metadata"]["status"] == 200
    created = proxy.manage("GET", "/manage/audit", params={"action": "token.create"}).json()
    assert created["pagination"]["total"] >= 1


# The published contract: every operation with its answer and error statuses (401 on every one).
PUBLISHED = {
    ("/manage/projects", "get"): {"200"},
    ("/manage/projects", "post"): {"201", "400", "409"},
    ("/manage/projects/{id}", "get"): {"200", "404"},
    ("/manage/projects/{id}", "patch"): {"200", "400", "404", "409"},
    ("/manage/projects/{id}/tokens/revoke", "post"): {"200", "404"},
    ("/manage/tokens", "get"): {"200", "400"},
    ("/manage/tokens", "post"): {"201", "400", "403", "404"},
    ("/manage/tokens/{id}", "get"): {"200", "404"},
    ("/manage/tokens/{id}", "patch"): {"200", "400", "404"},
    ("/manage/tokens/{id}", "delete"): {"204", "404"},
    ("/manage/audit", "get"): {"200", "400"},
    ("/manage/audit/{id}", "get"): {"200", "404"},
    ("/manage/cache/purge", "post"): {"200", "400", "409", "503"},
}


def test_the_openapi_document_publishes_every_operation(proxy: Proxy) -> None:
    document = requests.get(proxy.url + "/manage/openapi.json", timeout=5).json()
    operations = {
        (path, method): set(operation["responses"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }
    assert operations == {key: statuses | {"401"} for key, statuses in PUBLISHED.items()}
    schemas = document["components"]["schemas"]
    references = set(re.findall(r'"#/components/schemas/(\w+)"', json.dumps(document)))
    assert references <= set(schemas), references - set(schemas)
    audit = document["paths"]["/manage/audit"]["get"]["parameters"]
    assert [p["name"] for p in audit][:2] == ["page", "page_size"]
    assert audit[1]["schema"]["maximum"] == 100  # the query model's bounds, published
    token_list = document["paths"]["/manage/tokens"]["get"]["parameters"]
    assert token_list == [
        {
            "name": "projectId",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "format": "uuid"},
        }
    ]


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(stack: Stack, proxy: Proxy, workdir: Path) -> None:
    """Coverage and fuzzing phases of schemathesis against /manage/openapi.json, every check on. One real
    audit event's id is given to GET /manage/audit/{id}, which random ids only ever reach as a 404."""
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is a dev dependency: uv sync --group dev"
    stack.dispatcher(proxy.env, DISPATCHER_CONSUMER_NAME="schemathesis-dispatcher")
    request_id = f"schemathesis-{uuid.uuid4().hex}"
    proxy.call(proxy.token(), headers={"X-Request-ID": request_id})

    def audited() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = proxy.manage(
            "GET", "/manage/audit", params={"request_id": request_id}
        ).json()["events"]
        return events

    [event] = wait_until(audited, timeout=30, what="the audit event of one request")
    (workdir / "schemathesis.toml").write_text(
        f'[[operations]]\ninclude-path = "/manage/audit/{{id}}"\nparameters = {{ id = "{event["id"]}" }}\n'
    )
    result = subprocess.run(
        [
            st,
            "run",
            f"{proxy.url}/manage/openapi.json",
            "--url",
            proxy.url,
            "-H",
            f"Authorization: Bearer {MANAGEMENT_TOKEN}",
            "--checks",
            "all",
            "--phases",
            "coverage,fuzzing",
            "--max-examples",
            "5",
            "--seed",
            "20261127",
            "--generation-database",
            "none",
            "--no-color",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout, result.stdout[-3000:]
