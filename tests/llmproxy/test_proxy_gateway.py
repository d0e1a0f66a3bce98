"""The /v1 path through a real proxy process to the mock upstream: auth codes, key swap, streaming,
upstream errors, allow-list, request ids."""

from __future__ import annotations

import os
import re
import sys

import requests

from tests.llmproxy.conftest import (
    CHAT,
    UPSTREAM_KEY,
    ProcessFactory,
    Proxy,
    Stack,
    chunk_arrivals,
    metrics,
    run_sql,
    wait_until,
)
from tests.ports import free_port


def error_code(response: requests.Response) -> str:
    return str(response.json()["code"])


def test_valid_token_reaches_upstream_with_the_project_key(proxy: Proxy) -> None:
    token = proxy.token()
    response = proxy.call(token)
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "chat.completion"
    # The mock echoes the Authorization it received: the project's key, never the client's token.
    assert response.headers["x-mock-authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert token not in response.headers["x-mock-authorization"]
    assert response.headers["x-request-id"]
    for name in ("x-proxy-received-at", "x-proxy-duration-ms", "x-proxy-upstream-ms", "x-proxy-overhead-ms"):
        assert name in response.headers


def test_each_auth_error_has_its_code(proxy: Proxy) -> None:
    missing = proxy.call(None)
    assert (missing.status_code, error_code(missing)) == (401, "invalid_token")
    malformed = proxy.call("not-a-token")
    assert (malformed.status_code, error_code(malformed)) == (401, "invalid_token")
    unknown = proxy.call("sk-" + "A" * 22)
    assert (unknown.status_code, error_code(unknown)) == (401, "token_not_found")
    assert set(unknown.json()) >= {"error", "code"}

    project = proxy.create_project()
    revoked = proxy.create_token(project)
    assert proxy.manage("DELETE", f"/manage/tokens/{revoked['id']}").status_code == 204
    response = proxy.call(revoked["token"])
    assert (response.status_code, error_code(response)) == (401, "token_inactive")

    expired = proxy.create_token(project)
    run_sql(
        proxy.dsn, "UPDATE tokens SET expires_at = now() - interval '1 second' WHERE id = $1", expired["id"]
    )
    # seen once a cached record (if any) is older than TOKEN_CACHE_TTL (0.5 s in the test proxy)
    wait_until(lambda: error_code(proxy.call(expired["token"])) == "token_expired", timeout=5, what="expiry")
    response = proxy.call(expired["token"])
    assert (response.status_code, error_code(response)) == (401, "token_expired")

    inactive_project = proxy.create_project()
    token = proxy.create_token(inactive_project)["token"]
    assert (
        proxy.manage("PATCH", f"/manage/projects/{inactive_project}", {"is_active": False}).status_code == 200
    )
    response = proxy.call(token)
    assert (response.status_code, error_code(response)) == (401, "token_inactive")


def test_max_requests_then_429(proxy: Proxy) -> None:
    token = proxy.token(max_requests=3)
    statuses = [proxy.call(token).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = proxy.call(token)
    assert (refused.status_code, error_code(refused)) == (429, "rate_limit_exceeded")
    rows = run_sql(
        proxy.dsn, "SELECT request_count FROM tokens WHERE max_requests = 3 ORDER BY created_at DESC LIMIT 1"
    )
    assert rows[0]["request_count"] == 3


def test_revocation_elsewhere_is_visible_within_the_staleness_bound(proxy: Proxy) -> None:
    created = proxy.create_token(proxy.create_project())
    assert proxy.call(created["token"]).status_code == 200
    # Another replica revoking writes only to the database: this proxy learns it within TOKEN_CACHE_TTL.
    run_sql(proxy.dsn, "UPDATE tokens SET is_active = false WHERE id = $1", created["id"])
    wait_until(lambda: proxy.call(created["token"]).status_code == 401, timeout=5, what="revocation")


def test_a_limited_token_revoked_elsewhere_is_refused_at_once_as_revoked(proxy: Proxy) -> None:
    # A token with max_requests is counted in the database on every request, so that request also
    # learns of a revocation the cached record does not know yet: 401, not "used up" (429).
    created = proxy.create_token(proxy.create_project(), max_requests=100)
    assert proxy.call(created["token"]).status_code == 200
    run_sql(proxy.dsn, "UPDATE tokens SET is_active = false WHERE id = $1", created["id"])
    refused = proxy.call(created["token"])
    assert (refused.status_code, error_code(refused)) == (401, "token_inactive")
    count = run_sql(proxy.dsn, "SELECT request_count FROM tokens WHERE id = $1", created["id"])
    assert count[0]["request_count"] == 1  # the refused request was not counted

    project = proxy.create_project()
    of_project = proxy.create_token(project, max_requests=100)
    assert proxy.call(of_project["token"]).status_code == 200
    run_sql(proxy.dsn, "UPDATE projects SET is_active = false WHERE id = $1::uuid", project)
    refused = proxy.call(of_project["token"])
    assert (refused.status_code, error_code(refused)) == (401, "token_inactive")
    count = run_sql(proxy.dsn, "SELECT request_count FROM tokens WHERE id = $1", of_project["id"])
    assert count[0]["request_count"] == 1  # nor is a request of a deactivated project's token


def test_a_client_leaving_mid_stream_stops_the_upstream_read(proxy: Proxy) -> None:
    token = proxy.token()
    before = metrics(proxy)["client_disconnects"]
    # 200 chunks 50 ms apart: the upstream stream lasts 10 s unless the proxy stops reading it.
    headers = {"X-Mock-Inter-Token-Ms": "50", "X-Mock-Tokens": "200"}
    streamed = proxy.call(token, body={**CHAT, "stream": True}, headers=headers, stream=True)
    assert next(streamed.iter_content(chunk_size=None))
    streamed.close()  # the client goes away after the first chunk
    wait_until(
        lambda: metrics(proxy)["client_disconnects"] > before,
        timeout=5,
        what="the proxy noticing the client left",
    )


def test_stream_bytes_identical_to_upstream(proxy: Proxy, upstream_url: str) -> None:
    token = proxy.token()
    body = {**CHAT, "stream": True}
    headers = {"X-Mock-Inter-Token-Ms": "5", "X-Mock-Tokens": "20"}
    direct = requests.post(
        upstream_url + "/chat/completions", json=body, headers=headers, stream=True, timeout=10
    )
    direct_bytes = b"".join(direct.iter_content(chunk_size=None))
    proxied = proxy.call(token, body=body, headers=headers, stream=True)
    assert proxied.headers["content-type"].startswith("text/event-stream")
    chunks = list(proxied.iter_content(chunk_size=None))
    assert len(chunks) > 5, "the stream arrived in one piece: it was buffered"

    def same_second(stream: bytes) -> bytes:  # the two calls may straddle a second: "created" differs
        return re.sub(rb'"created": ?\d+', b'"created":0', stream)

    assert same_second(b"".join(chunks)) == same_second(direct_bytes)
    assert direct_bytes.endswith(b"data: [DONE]\n\n")


def test_a_stream_through_the_proxy_shows_its_first_token_before_its_end(proxy: Proxy) -> None:
    """With the upstream's time to first token and per-token delay, a client of the proxy sees the first
    token well before the stream ends, and before a whole answer arrives: nothing is held back."""
    token = proxy.token()
    tokens, gap_ms = 12, 25
    headers = {"X-Mock-TTFT-Ms": "20", "X-Mock-Inter-Token-Ms": str(gap_ms), "X-Mock-Tokens": str(tokens)}
    stream = chunk_arrivals(
        lambda: proxy.call(token, body={**CHAT, "stream": True}, headers=headers, stream=True)
    )
    assert len(stream) > tokens // 2, "the stream arrived in a few pieces: it was buffered"
    assert stream[-1] - stream[0] >= tokens * gap_ms / 1000 / 2  # spread over its generation
    whole = chunk_arrivals(lambda: proxy.call(token, headers=headers, stream=True))
    assert stream[0] < whole[-1]


def test_upstream_errors_pass_through(proxy: Proxy) -> None:
    token = proxy.token()
    for status in (429, 500, 503):
        response = proxy.call(token, headers={"X-Mock-Error": str(status)})
        assert response.status_code == status
        assert "error" in response.json()  # the upstream's own error document
    assert metrics(proxy)["error_count"] >= 3


def test_unreachable_upstream_is_502(stack: Stack) -> None:
    dead = stack.proxy(OPENAI_API_URL=f"http://127.0.0.1:{free_port()}")
    response = dead.call(dead.token())
    assert (response.status_code, error_code(response)) == (502, "upstream_unavailable")


def test_allow_list_of_paths_methods_and_models(stack: Stack) -> None:
    proxy = stack.proxy(ALLOWED_MODELS="gpt-4o-mini")
    token = proxy.token()
    assert proxy.call(token, "/v1/files", body=None).status_code == 404
    response = proxy.call(token, "/v1/models", body=None, method="DELETE")
    assert (response.status_code, error_code(response)) == (405, "method_not_allowed")
    response = proxy.call(token, body={**CHAT, "model": "gpt-4-forbidden"})
    assert (response.status_code, error_code(response)) == (400, "param_not_allowed")
    assert proxy.call(token).status_code == 200
    assert proxy.call(token, "/v1/models", body=None).status_code == 200


def test_request_id_is_kept_or_generated(proxy: Proxy) -> None:
    token = proxy.token()
    given = proxy.call(token, headers={"X-Request-ID": "client-chosen-id-1"})
    assert given.headers["x-request-id"] == "client-chosen-id-1"
    first, second = proxy.call(token), proxy.call(token)
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    error = proxy.call(None, headers={"X-Request-ID": "client-chosen-id-2"})
    assert error.headers["x-request-id"] == "client-chosen-id-2"


def test_slow_upstream_is_504_and_a_long_stream_is_not_cut(stack: Stack) -> None:
    proxy = stack.proxy(REQUEST_TIMEOUT="0.5")
    token = proxy.token()
    slow = proxy.call(token, headers={"X-Mock-Error": "timeout"})
    assert (slow.status_code, error_code(slow)) == (504, "upstream_timeout")
    # REQUEST_TIMEOUT bounds idle gaps, not a stream's length: 30 chunks 0.1 s apart take ~3 s.
    stream = proxy.call(
        token, body={**CHAT, "stream": True}, headers={"X-Mock-Inter-Token-Ms": "100", "X-Mock-Tokens": "30"}
    )
    assert stream.status_code == 200 and stream.content.endswith(b"data: [DONE]\n\n")


def test_upstream_restart_between_requests_costs_no_error(stack: Stack, factory: ProcessFactory) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "llmproxy", "mock-upstream", "--port", str(port)]
    mock = factory.process("mock-restart", argv, dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(url + "/mock/stats", timeout=1).ok, timeout=30, what="mock upstream")
    proxy = stack.proxy(OPENAI_API_URL=url)
    token = proxy.token()
    assert proxy.call(token).status_code == 200  # leaves a keep-alive connection in the pool
    mock.stop()
    factory.process("mock-restart", argv, dict(os.environ))
    wait_until(
        lambda: requests.get(url + "/mock/stats", timeout=1).ok, timeout=30, what="mock upstream again"
    )
    assert proxy.call(token).status_code == 200  # the dead pooled connection is replaced, not reported
