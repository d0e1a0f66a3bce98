"""The mock upstream as a real process on a free port, spoken to over HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.llmproxy.conftest import chunk_arrivals

CHAT: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "hello there, how are you?"}],
}


@dataclass
class Mock:
    process: subprocess.Popen[str]
    port: int

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        payload = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        conn.request(method, path, body=payload, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def json(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        status, _, data = self.request(method, path, body, headers)
        assert status == 200, data
        return json.loads(data)


def start_mock(*args: str, env: dict[str, str] | None = None) -> Mock:
    """Start `python -m llmproxy mock-upstream --port 0 ...` and read the port from its first line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "llmproxy", "mock-upstream", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=15):
        process.kill()
        raise AssertionError("mock-upstream printed nothing in 15 s")
    line = process.stdout.readline()
    match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if match is None:
        process.kill()
        raise AssertionError(
            f"unexpected first line {line!r}; stderr: {process.stderr.read() if process.stderr else ''}"
        )
    return Mock(process, int(match.group(1)))


def stop_mock(mock: Mock) -> int:
    mock.process.send_signal(signal.SIGTERM)
    try:
        return mock.process.wait(timeout=10)
    finally:
        if mock.process.poll() is None:
            mock.process.kill()
            mock.process.wait()


@pytest.fixture(scope="module")
def mock() -> Iterator[Mock]:
    running = start_mock("--completion-tokens", "12", "--seed", "1")
    yield running
    stop_mock(running)


def sse_events(data: bytes) -> list[str]:
    text = data.decode()
    assert text.endswith("data: [DONE]\n\n")
    return [block.removeprefix("data: ") for block in text.split("\n\n") if block]


def test_health_and_models(mock: Mock) -> None:
    assert mock.json("GET", "/health") == {"status": "ok"}
    models = mock.json("GET", "/v1/models")
    assert models["object"] == "list"
    assert "gpt-4o-mini" in [m["id"] for m in models["data"]]


def test_chat_is_deterministic_with_usage_from_the_request(mock: Mock) -> None:
    first = mock.json("POST", "/v1/chat/completions", CHAT)
    again = mock.json("POST", "/v1/chat/completions", CHAT)
    other = mock.json(
        "POST", "/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": "bye"}]}
    )
    content = first["choices"][0]["message"]["content"]
    assert content == again["choices"][0]["message"]["content"]
    assert content != other["choices"][0]["message"]["content"]
    assert len(content.split(" ")) == 12
    # 3 priming + 3 per message + ceil(25 characters / 4) = 13
    assert first["usage"] == {"prompt_tokens": 13, "completion_tokens": 12, "total_tokens": 25}
    assert first["object"] == "chat.completion"
    assert first["choices"][0]["finish_reason"] == "stop"


def test_max_tokens_limits_the_answer(mock: Mock) -> None:
    reply = mock.json("POST", "/v1/chat/completions", {**CHAT, "max_tokens": 3})
    assert reply["usage"]["completion_tokens"] == 3
    assert reply["choices"][0]["finish_reason"] == "length"
    forced = mock.json("POST", "/v1/chat/completions", CHAT, {"X-Mock-Tokens": "40"})
    assert len(forced["choices"][0]["message"]["content"].split(" ")) == 40


def test_stream_chunks_match_the_json_answer(mock: Mock) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    status, headers, data = mock.request("POST", "/v1/chat/completions", body, {"X-Mock-Inter-Token-Ms": "1"})
    assert status == 200
    assert headers["content-type"] == "text/event-stream"
    events = sse_events(data)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    whole = mock.json("POST", "/v1/chat/completions", CHAT)
    assert streamed == whole["choices"][0]["message"]["content"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]
    # without a gap the same events arrive in one write
    _, _, fast = mock.request("POST", "/v1/chat/completions", body)

    def timeless(stream: list[str]) -> list[Any]:  # `created` is the second each answer began
        return [{**json.loads(e), "created": 0} if e != "[DONE]" else e for e in stream]

    assert timeless(sse_events(fast)) == timeless(events)


def test_embeddings_floats_and_base64(mock: Mock) -> None:
    body = {"model": "text-embedding-3-small", "input": ["alpha", "beta"], "dimensions": 8}
    floats = mock.json("POST", "/v1/embeddings", body)
    assert [d["index"] for d in floats["data"]] == [0, 1]
    vector = floats["data"][0]["embedding"]
    assert len(vector) == 8
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-5
    assert floats["data"][0]["embedding"] != floats["data"][1]["embedding"]
    assert floats["usage"] == {"prompt_tokens": 3, "total_tokens": 3}  # ceil(5/4) + ceil(4/4)
    encoded = mock.json("POST", "/v1/embeddings", {**body, "encoding_format": "base64"})
    decoded = array("f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert decoded.tolist() == vector


def test_authorization_is_echoed_and_counted(mock: Mock) -> None:
    status, headers, _ = mock.request("GET", "/v1/models", headers={"Authorization": "Bearer sk-project-key"})
    assert status == 200
    assert headers["x-mock-authorization"] == "Bearer sk-project-key"
    stats = mock.json("GET", "/mock/stats")
    assert stats["by_authorization"]["Bearer sk-project-key"] >= 1
    assert stats["by_path"]["/v1/models"] >= 1


def test_errors_forced_per_request(mock: Mock) -> None:
    status, headers, data = mock.request("POST", "/v1/chat/completions", CHAT, {"X-Mock-Error": "429"})
    assert status == 429
    assert headers["retry-after"] == "1"
    assert json.loads(data)["error"]["code"] == "rate_limit_exceeded"
    status, _, data = mock.request("POST", "/v1/embeddings", {}, {"X-Mock-Error": "503"})
    assert status == 503
    assert json.loads(data)["error"]["type"] == "server_error"
    status, _, data = mock.request("GET", "/v1/models", headers={"X-Mock-Error": "teapot"})
    assert status == 400
    assert "X-Mock-Error" in json.loads(data)["error"]["message"]


def test_latency_header_delays_the_answer(mock: Mock) -> None:
    started = time.monotonic()
    status, _, _ = mock.request("GET", "/v1/models", headers={"X-Mock-Latency-Ms": "250"})
    assert status == 200
    assert time.monotonic() - started >= 0.25  # a sleep lasts at least its length


def test_bad_requests_get_openai_style_errors(mock: Mock) -> None:
    for body, code in [
        (b"{nope", "invalid_json"),
        ({"model": "m"}, "invalid_messages"),
        ({"messages": []}, "missing_model"),
    ]:
        status, _, data = mock.request("POST", "/v1/chat/completions", body)
        assert status == 400
        assert json.loads(data)["error"]["code"] == code
    assert mock.request("GET", "/v1/nothing")[0] == 404
    assert mock.request("GET", "/v1/chat/completions")[0] == 405


def test_a_stream_arrives_token_by_token_and_a_whole_answer_after_its_generation() -> None:
    """Time to first token, then one gap per token: a stream's first piece arrives well before its last,
    and the same answer not streamed arrives only once all of it is generated."""
    tokens, gap_ms = 12, 25
    timed = start_mock("--ttft", "20", "--inter-token-ms", str(gap_ms), "--completion-tokens", str(tokens))
    try:
        url = f"http://127.0.0.1:{timed.port}/v1/chat/completions"
        stream = chunk_arrivals(
            lambda: requests.post(url, json={**CHAT, "stream": True}, stream=True, timeout=10)
        )
        assert len(stream) > tokens // 2, "the stream arrived in a few pieces, not token by token"
        assert stream[-1] - stream[0] >= tokens * gap_ms / 1000 / 2  # spread over its generation
        whole = chunk_arrivals(lambda: requests.post(url, json=CHAT, stream=True, timeout=10))
        assert stream[0] < whole[-1]
    finally:
        assert stop_mock(timed) == 0


def test_configured_error_rates_and_timeouts() -> None:
    failing = start_mock("--error-rate-500", "1", env={"MOCK_TIMEOUT_RATE": "0"})
    try:
        assert [failing.request("GET", "/v1/models")[0] for _ in range(5)] == [500] * 5
        assert failing.request("GET", "/health")[0] == 200  # only /v1 routes fail
    finally:
        assert stop_mock(failing) == 0
    hanging = start_mock("--hang-s", "0.2", env={"MOCK_TIMEOUT_RATE": "1"})
    try:
        status, _, data = hanging.request("POST", "/v1/chat/completions", CHAT)
        assert status == 504
        assert json.loads(data)["error"]["code"] == "timeout"
        with pytest.raises(TimeoutError):  # a client that gives up first sees a timeout
            hanging.request("GET", "/v1/models", headers={"X-Mock-Error": "timeout"}, timeout=0.1)
    finally:
        assert stop_mock(hanging) == 0


def test_expected_key_rejects_other_keys() -> None:
    strict = start_mock("--expected-api-key", "sk-real")
    try:
        assert strict.request("GET", "/v1/models", headers={"Authorization": "Bearer sk-wrong"})[0] == 401
        assert strict.request("GET", "/v1/models")[0] == 401
        assert strict.request("GET", "/v1/models", headers={"Authorization": "Bearer sk-real"})[0] == 200
    finally:
        stop_mock(strict)


def test_sigterm_exits_zero_during_a_stream() -> None:
    running = start_mock("--inter-token-ms", "200", "--completion-tokens", "100")
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    conn.request("POST", "/v1/chat/completions", body=json.dumps({**CHAT, "stream": True}))
    assert conn.getresponse().status == 200
    assert stop_mock(running) == 0
    conn.close()


def test_bad_flags_and_busy_port_are_reported() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "llmproxy", "mock-upstream", "--latency", "gauss:1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert "unknown latency distribution 'gauss'" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [sys.executable, "-m", "llmproxy", "mock-upstream", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert busy.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert "Traceback" not in busy.stderr


def test_cut_stops_the_answer_halfway(mock: Mock) -> None:
    with pytest.raises(http.client.IncompleteRead):
        mock.request("POST", "/v1/chat/completions", CHAT, {"X-Mock-Error": "cut"})
    conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=10)
    body = json.dumps({**CHAT, "stream": True})
    conn.request("POST", "/v1/chat/completions", body=body, headers={"X-Mock-Error": "cut"})
    response = conn.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead) as caught:  # the chunked body never ends properly
        response.read()
    conn.close()
    partial = caught.value.partial.decode()
    assert partial.startswith("data: {") and "[DONE]" not in partial
