"""The LLM Proxy's management API (`/manage/*`, see PROXY-CONTRACT.md): one client for every caller.

`devenv token`, the failover experiments and their data-loss check, the load test's preflight, and the
load test's provisioning inside Locust's gevent process all use it; so it needs nothing but the standard
library and devenv.errors (gevent makes urllib cooperative there).

A refusal is a ManagementError with the HTTP status and the API's error code (`{"error", "code"}`), a
message naming the call and a hint saying what to do; no answer at all is one with status 0. Both are
TargetErrors (exit 2): the target, its token or the values given to it are wrong, not devenv.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from devenv.errors import TargetError

TOKEN_REFUSED = (401, 403)
UNREACHABLE = 0


class ManagementError(TargetError):
    """The management API refused a call (`status`, the API's `code`), or did not answer (status 0)."""

    def __init__(self, message: str, hint: str, status: int, code: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class ManagementClient:
    """The proxy at `url`, called with the management `token` (None: calls that need none, e.g. /health)."""

    url: str
    token: str | None
    timeout_s: float = 15.0

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        """One call; its JSON answer (None when the answer is empty, e.g. 204)."""
        base = self.url.rstrip("/") + path
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            base + ("?" + urllib.parse.urlencode(query) if query else ""),
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers=headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            raise self._refused(method, path, exc.code, exc.read(2000)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ManagementError(
                f"cannot reach the target {base}: {getattr(exc, 'reason', exc)}",
                "start it (`devenv up -d` for local) or point --url / --target at a running proxy",
                UNREACHABLE,
            ) from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ManagementError(
                f"{method} {path} on {self.url} answered {status} with something other than JSON: {raw[:200]!r}",
                "is this an LLM Proxy? point --url at one",
                status,
            ) from None

    def _refused(self, method: str, path: str, status: int, raw: bytes) -> ManagementError:
        text = raw.decode(errors="replace").strip()
        code: str | None = None
        try:
            document = json.loads(raw)
            if isinstance(document, dict):
                code = str(document["code"]) if document.get("code") else None
                text = str(document.get("error") or text)
        except ValueError:
            pass
        detail = f"{code}: {text[:300]}" if code else text[:300]
        if status in TOKEN_REFUSED:
            return ManagementError(
                f"{self.url} refused the management token ({status}) on {method} {path}: {detail}",
                "pass the target's MANAGEMENT_TOKEN (--management-token or the MANAGEMENT_TOKEN variable)",
                status,
                code,
            )
        if status >= 500:
            hint = "look at the proxy's log (`devenv logs proxy` locally) and its database"
        elif code is None:
            hint = "is this an LLM Proxy? its management API answers JSON errors under /manage/"
        else:
            hint = "fix what the API named (`devenv token list` shows the tokens and their ids)"
        return ManagementError(
            f"{method} {path} on {self.url} answered {status}: {detail}", hint, status, code
        )

    def projects(self) -> list[dict[str, Any]]:
        listing = self.call("GET", "/manage/projects")
        projects = listing.get("projects", []) if isinstance(listing, dict) else listing  # either shape
        return [dict(project) for project in projects or []]

    def create_project(self, name: str, api_key: str) -> dict[str, Any]:
        return dict(self.call("POST", "/manage/projects", {"name": name, "api_key": api_key}))

    def project_named(self, name: str, api_key: str) -> dict[str, Any]:
        """The project called `name`, created with the upstream `api_key` if there is none."""
        for project in self.projects():
            if project.get("name") == name:
                return project
        return self.create_project(name, api_key)

    def create_token(
        self, project_id: str, duration_minutes: int, max_requests: int | None = None
    ) -> dict[str, Any]:
        """A new token: `id`, `token` (the secret, shown once), `expires_at`, `max_requests`."""
        body: dict[str, Any] = {"project_id": project_id, "duration_minutes": duration_minutes}
        if max_requests is not None:
            body["max_requests"] = max_requests
        return dict(self.call("POST", "/manage/tokens", body))

    def tokens(self, project_id: str | None = None) -> list[dict[str, Any]]:
        """Every token (of one project), without its secret: `token_hint`, `is_active`, counts, expiry."""
        listing = self.call("GET", "/manage/tokens", query={"projectId": project_id} if project_id else None)
        return [dict(token) for token in listing or []]

    def revoke_token(self, token_id: str) -> None:
        self.call("DELETE", f"/manage/tokens/{urllib.parse.quote(token_id, safe='')}")

    def revoke_project_tokens(self, project_id: str) -> int:
        """Revoke every active token of the project; how many were revoked."""
        answer = self.call(
            "POST", f"/manage/projects/{urllib.parse.quote(project_id, safe='')}/tokens/revoke"
        )
        return int((answer or {}).get("revoked", 0))

    def audit_page(self, page: int, page_size: int, **filters: str) -> dict[str, Any]:
        """One page of audit events (`events`, `pagination`), filtered by action, since, until, ..."""
        return dict(
            self.call("GET", "/manage/audit", query={**filters, "page": page, "page_size": page_size})
        )
