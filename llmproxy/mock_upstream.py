"""`python -m llmproxy mock-upstream`: an OpenAI-compatible fake upstream for development and load tests.

A raw ASGI app on uvicorn (uvloop + httptools), so that it outruns the proxy it stands behind.
Answers are deterministic, derived from the request (same request, same content and `usage`);
latency, time to first token, inter-token delay and errors are configurable per process (flags or
`MOCK_*` environment variables) and per request (`X-Mock-*` headers). Every response echoes the
Authorization header it received as `X-Mock-Authorization`, so a proxy's key swap can be checked.

Per-request headers:
  X-Mock-Error: 429|500|502|503|<any 4xx/5xx>|timeout|cut   force that outcome (cut: the answer
                              stops halfway and the connection closes)
  X-Mock-Latency-Ms: N        response time (streams: time to first token) for this request
  X-Mock-TTFT-Ms: N           time to first token of a stream
  X-Mock-Inter-Token-Ms: N    delay between stream chunks
  X-Mock-Tokens: N            number of completion tokens

`GET /mock/stats` returns request counts by path, status and Authorization value.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import math
import os
import random
import signal
import socket
import struct
import sys
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_PORT = 8081
DEFAULT_MODELS = "gpt-4o-mini,gpt-4o,gpt-4.1-mini,text-embedding-3-small,text-embedding-3-large"
MAX_TRACKED_AUTHORIZATIONS = 1000
DONE = b"data: [DONE]\n\n"

VOCABULARY = tuple(
    " ".join(
        [
            "the quick brown fox jumps over a lazy dog while proxies cache answers and tokens",
            "stream through load balancers to clients that measure latency under steady pressure",
            "databases keep audit events redis holds streams and every request finds its way home",
            "models reply with words chosen from this small list so tests can predict each answer",
        ]
    ).split(" ")
)


@dataclass(frozen=True)
class Latency:
    """A latency distribution in milliseconds: fixed, uniform, normal, exponential or lognormal."""

    kind: str
    a: float = 0.0
    b: float = 0.0

    KINDS: ClassVar[dict[str, int]] = {
        "fixed": 1,
        "uniform": 2,
        "normal": 2,
        "exponential": 1,
        "lognormal": 2,
    }

    @classmethod
    def parse(cls, spec: str) -> Latency:
        """`50`, `fixed:50`, `uniform:LO:HI`, `normal:MEAN:SD`, `exponential:MEAN`, `lognormal:MED:SIGMA`."""
        text = spec.strip()
        kind, _, rest = text.partition(":") if ":" in text else ("fixed", "", text)
        if kind not in cls.KINDS:
            raise ValueError(
                f"unknown latency distribution {kind!r} in {spec!r}; use one of {', '.join(cls.KINDS)}"
            )
        parts = rest.split(":") if rest else []
        if len(parts) != cls.KINDS[kind]:
            raise ValueError(
                f"latency {kind!r} takes {cls.KINDS[kind]} number(s) separated by ':', got {spec!r}"
            )
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"latency {spec!r} holds a value that is not a number") from None
        if any(n < 0 or not math.isfinite(n) for n in numbers):
            raise ValueError(f"latency {spec!r}: values must be finite and >= 0")
        if kind == "uniform" and numbers[0] > numbers[1]:
            raise ValueError(f"latency {spec!r}: the low bound is above the high bound")
        return cls(kind, *numbers)

    def sample(self, rng: random.Random) -> float:
        """One draw in milliseconds, never negative."""
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.uniform(self.a, self.b)
        elif self.kind == "normal":
            value = rng.gauss(self.a, self.b)
        elif self.kind == "exponential":
            value = rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        else:
            value = self.a * math.exp(rng.gauss(0.0, self.b))
        return max(0.0, value)


@dataclass(frozen=True)
class MockConfig:
    """How the fake upstream behaves; every field has a flag and a MOCK_* environment variable."""

    latency: Latency
    ttft: Latency | None
    inter_token_ms: float
    completion_tokens: int
    embedding_dim: int
    rate_429: float
    rate_500: float
    rate_timeout: float
    hang_s: float
    expected_api_key: str | None
    models: tuple[str, ...]
    seed: int | None


class RequestError(Exception):
    """A request the fake refuses, answered as an OpenAI-style error body."""

    def __init__(self, status: int, message: str, code: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.kind = kind


@dataclass
class Call:
    """What one request asked for: its path, parsed body and the per-request overrides."""

    path: str
    method: str
    authorization: bytes | None
    headers: dict[bytes, bytes]
    body: bytes
    cut: bool = False  # X-Mock-Error: cut: the answer stops halfway and the connection closes

    def override_ms(self, name: bytes) -> float | None:
        raw = self.headers.get(name)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise RequestError(
                400, f"header {name.decode()} must be a number of milliseconds", "bad_mock_header"
            ) from None
        if value < 0 or not math.isfinite(value):
            raise RequestError(400, f"header {name.decode()} must be >= 0", "bad_mock_header")
        return value

    def json(self) -> dict[str, Any]:
        try:
            document = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise RequestError(400, "the request body is not valid JSON", "invalid_json") from None
        if not isinstance(document, dict):
            raise RequestError(400, "the request body must be a JSON object", "invalid_json")
        return document


def words_for(digest: bytes, count: int) -> list[str]:
    """`count` words picked deterministically from the digest of the request."""
    size = len(VOCABULARY)
    return [VOCABULARY[(digest[i % len(digest)] + i * 7) % size] for i in range(count)]


def text_tokens(text: str) -> int:
    """A stable token estimate: one token per four characters, as OpenAI's rule of thumb."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def message_text(content: Any) -> str:
    """The text of a chat message's content, which is a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def prompt_usage(messages: list[Any]) -> int:
    """Prompt tokens of a chat request: 3 per message plus its text, plus 3 to prime the reply."""
    total = 3
    for message in messages:
        if isinstance(message, dict):
            total += 3 + text_tokens(message_text(message.get("content")))
    return total


def embedding_vector(text: bytes, dim: int) -> array[float]:
    """A unit vector of `dim` float32 derived from the input's hash."""
    raw = hashlib.shake_128(text).digest(dim * 2)
    values = struct.unpack(f"<{dim}h", raw)
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return array("f", (v / norm for v in values))


def sse(document: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(document) + b"\n\n"


class MockUpstream:
    """The ASGI application."""

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.started = time.time()
        self.count = 0
        self.by_path: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.by_authorization: Counter[str] = Counter()
        self.models_body = orjson.dumps(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 1700000000, "owned_by": "mock-upstream"}
                    for m in config.models
                ],
            }
        )
        self.routes: dict[str, tuple[str, Callable[[Call, Send, Receive], Awaitable[int]]]] = {
            "/v1/chat/completions": ("POST", self.chat_completions),
            "/v1/completions": ("POST", self.completions),
            "/v1/embeddings": ("POST", self.embeddings),
            "/v1/models": ("GET", self.list_models),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        headers = {
            name: value for name, value in scope["headers"] if name.startswith((b"x-mock-", b"author"))
        }
        authorization = headers.get(b"authorization")
        body = await read_body(receive)
        call = Call(path, scope["method"], authorization, headers, body)
        self.count += 1
        self.by_path[path] += 1
        if authorization is not None:
            key = authorization.decode("latin-1")
            if key in self.by_authorization or len(self.by_authorization) < MAX_TRACKED_AUTHORIZATIONS:
                self.by_authorization[key] += 1
        try:
            status = await self.dispatch(call, send, receive)
        except RequestError as exc:
            status = exc.status
            await self.send_error(call, send, exc)
        self.by_status[status] += 1

    async def dispatch(self, call: Call, send: Send, receive: Receive) -> int:
        if call.path == "/health":
            await self.send_json(call, send, 200, b'{"status":"ok"}')
            return 200
        if call.path == "/mock/stats":
            await self.send_json(call, send, 200, orjson.dumps(self.stats()))
            return 200
        route = self.routes.get(call.path)
        if route is None:
            raise RequestError(404, f"unknown path {call.path}", "not_found")
        method, handler = route
        if call.method != method:
            raise RequestError(
                405, f"{call.method} is not allowed on {call.path}; use {method}", "method_not_allowed"
            )
        self.check_key(call)
        failure = await self.injected_failure(call, receive)
        if failure is not None:
            raise failure
        return await handler(call, send, receive)

    def check_key(self, call: Call) -> None:
        expected = self.config.expected_api_key
        if expected is not None and call.authorization != f"Bearer {expected}".encode():
            raise RequestError(401, "Incorrect API key provided.", "invalid_api_key")

    async def injected_failure(self, call: Call, receive: Receive) -> RequestError | None:
        """The error this request should get: from X-Mock-Error, else drawn from the configured rates."""
        forced = call.headers.get(b"x-mock-error")
        if forced is not None:
            outcome = forced.decode("latin-1").strip().lower()
        else:
            draw = self.rng.random()
            cfg = self.config
            if draw < cfg.rate_429:
                outcome = "429"
            elif draw < cfg.rate_429 + cfg.rate_500:
                outcome = "500"
            elif draw < cfg.rate_429 + cfg.rate_500 + cfg.rate_timeout:
                outcome = "timeout"
            else:
                return None
        if outcome == "cut":
            call.cut = True
            return None
        if outcome == "timeout":
            await wait_for_disconnect(receive, self.config.hang_s)
            return RequestError(504, "the mock upstream timed out on purpose", "timeout", "server_error")
        if not outcome.isdigit() or not 400 <= int(outcome) <= 599:
            raise RequestError(
                400,
                f"X-Mock-Error must be a 4xx/5xx status, 'timeout' or 'cut', got {outcome!r}",
                "bad_mock_header",
            )
        status = int(outcome)
        await self.sleep_latency(call)
        if status == 429:
            return RequestError(
                429, "Rate limit reached (injected by the mock upstream).", "rate_limit_exceeded", "requests"
            )
        return RequestError(
            status, f"injected {status} from the mock upstream", "injected_error", "server_error"
        )

    async def sleep_latency(self, call: Call) -> None:
        override = call.override_ms(b"x-mock-latency-ms")
        delay = override if override is not None else self.config.latency.sample(self.rng)
        if delay > 0:
            await asyncio.sleep(delay / 1000)

    def completion_count(self, call: Call, document: dict[str, Any]) -> tuple[int, str]:
        """How many completion tokens to produce, and the finish reason."""
        forced = call.headers.get(b"x-mock-tokens")
        if forced is not None:
            if not forced.isdigit():
                raise RequestError(
                    400, "header X-Mock-Tokens must be a non-negative integer", "bad_mock_header"
                )
            return int(forced), "stop"
        limit = document.get("max_completion_tokens", document.get("max_tokens"))
        if (
            isinstance(limit, int)
            and not isinstance(limit, bool)
            and 1 <= limit < self.config.completion_tokens
        ):
            return limit, "length"
        return self.config.completion_tokens, "stop"

    async def chat_completions(self, call: Call, send: Send, receive: Receive) -> int:
        document = call.json()
        messages = document.get("messages")
        model = document.get("model")
        if not isinstance(model, str) or not model:
            raise RequestError(400, "you must provide a model parameter", "missing_model")
        if not isinstance(messages, list) or not messages:
            raise RequestError(400, "'messages' must be a non-empty array", "invalid_messages")
        digest = hashlib.blake2b(
            model.encode() + orjson.dumps(messages, option=orjson.OPT_SORT_KEYS), digest_size=16
        ).digest()
        count, finish = self.completion_count(call, document)
        words = words_for(digest, count)
        usage = {"prompt_tokens": prompt_usage(messages), "completion_tokens": count, "total_tokens": 0}
        usage["total_tokens"] = usage["prompt_tokens"] + count
        completion_id = "chatcmpl-mock" + digest.hex()[:20]
        created = int(time.time())
        if document.get("stream") is True:
            include_usage = bool((document.get("stream_options") or {}).get("include_usage"))
            base = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_mock",
            }
            if include_usage:
                base["usage"] = None

            def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
                choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                return sse({**base, "choices": [choice]})

            chunks = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
            chunks += [chunk({"content": w if i == 0 else " " + w}, None) for i, w in enumerate(words)]
            chunks.append(chunk({}, finish))
            if include_usage:
                chunks.append(sse({**base, "choices": [], "usage": usage}))
            await self.stream(call, send, chunks)
            return 200
        await self.sleep_latency(call)
        body = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(words), "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": usage,
        }
        await self.send_json(call, send, 200, orjson.dumps(body))
        return 200

    async def completions(self, call: Call, send: Send, receive: Receive) -> int:
        document = call.json()
        model = document.get("model")
        prompt = document.get("prompt")
        if not isinstance(model, str) or not model:
            raise RequestError(400, "you must provide a model parameter", "missing_model")
        if not isinstance(prompt, str | list):
            raise RequestError(400, "'prompt' must be a string or an array of strings", "invalid_prompt")
        prompts = [prompt] if isinstance(prompt, str) else [str(p) for p in prompt]
        digest = hashlib.blake2b(model.encode() + orjson.dumps(prompts), digest_size=16).digest()
        count, finish = self.completion_count(call, document)
        words = words_for(digest, count)
        usage = {"prompt_tokens": sum(text_tokens(p) for p in prompts), "completion_tokens": count}
        usage["total_tokens"] = usage["prompt_tokens"] + count
        base = {
            "id": "cmpl-mock" + digest.hex()[:20],
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
        }
        if document.get("stream") is True:

            def chunk(text: str, finish_reason: str | None) -> bytes:
                choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
                return sse({**base, "choices": [choice]})

            chunks = [chunk(" " + w, None) for w in words] + [chunk("", finish)]
            await self.stream(call, send, chunks)
            return 200
        await self.sleep_latency(call)
        choice = {"index": 0, "text": " " + " ".join(words), "logprobs": None, "finish_reason": finish}
        await self.send_json(call, send, 200, orjson.dumps({**base, "choices": [choice], "usage": usage}))
        return 200

    async def embeddings(self, call: Call, send: Send, receive: Receive) -> int:
        document = call.json()
        model = document.get("model")
        raw_input = document.get("input")
        if not isinstance(model, str) or not model:
            raise RequestError(400, "you must provide a model parameter", "missing_model")
        if isinstance(raw_input, str) or (
            isinstance(raw_input, list) and raw_input and all(isinstance(x, int) for x in raw_input)
        ):
            inputs: list[Any] = [raw_input]
        elif isinstance(raw_input, list) and raw_input:
            inputs = raw_input
        else:
            raise RequestError(400, "'input' must be a string or a non-empty array", "invalid_input")
        dim = document.get("dimensions", self.config.embedding_dim)
        if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 4096:
            raise RequestError(
                400, "'dimensions' must be an integer between 1 and 4096", "invalid_dimensions"
            )
        as_base64 = document.get("encoding_format") == "base64"
        data = []
        prompt_tokens = 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else orjson.dumps(item).decode()
            prompt_tokens += (
                text_tokens(text) if isinstance(item, str) else len(item) if isinstance(item, list) else 1
            )
            vector = embedding_vector(model.encode() + b"\0" + text.encode(), dim)
            encoded: Any = base64.b64encode(vector.tobytes()).decode() if as_base64 else vector.tolist()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        await self.sleep_latency(call)
        body = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
        await self.send_json(call, send, 200, orjson.dumps(body))
        return 200

    async def list_models(self, call: Call, send: Send, receive: Receive) -> int:
        await self.sleep_latency(call)
        await self.send_json(call, send, 200, self.models_body)
        return 200

    async def stream(self, call: Call, send: Send, chunks: list[bytes]) -> None:
        """An SSE stream: headers and first chunk after the time to first token, then one chunk per gap."""
        ttft = call.override_ms(b"x-mock-ttft-ms")
        if ttft is None:
            ttft = call.override_ms(b"x-mock-latency-ms")
        if ttft is None:
            ttft = (self.config.ttft or self.config.latency).sample(self.rng)
        gap = call.override_ms(b"x-mock-inter-token-ms")
        gap = self.config.inter_token_ms if gap is None else gap
        if ttft > 0:
            await asyncio.sleep(ttft / 1000)
        headers = self.headers(call, b"text/event-stream")
        headers.append((b"cache-control", b"no-cache"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if call.cut:  # half the events, then the connection closes with no [DONE]
            await send(
                {
                    "type": "http.response.body",
                    "body": b"".join(chunks[: len(chunks) // 2]),
                    "more_body": True,
                }
            )
            return
        if gap <= 0:  # no gap: one write holds every chunk (the client still parses separate events)
            await send({"type": "http.response.body", "body": b"".join(chunks) + DONE, "more_body": False})
            return
        # The role chunk and the first token go together, as they do from OpenAI.
        for index, chunk in enumerate(chunks):
            if index > 1:
                await asyncio.sleep(gap / 1000)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": DONE, "more_body": False})

    def headers(self, call: Call, content_type: bytes) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", content_type), (b"x-request-id", b"req_mock_%d" % self.count)]
        if call.authorization is not None:
            headers.append((b"x-mock-authorization", call.authorization))
        return headers

    async def send_json(self, call: Call, send: Send, status: int, body: bytes) -> None:
        headers = self.headers(call, b"application/json")
        headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if call.cut:  # half the announced body, then the connection closes
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            return
        await send({"type": "http.response.body", "body": body})

    async def send_error(self, call: Call, send: Send, exc: RequestError) -> None:
        body = orjson.dumps(
            {"error": {"message": exc.message, "type": exc.kind, "param": None, "code": exc.code}}
        )
        headers = self.headers(call, b"application/json")
        headers.append((b"content-length", b"%d" % len(body)))
        if exc.status == 429:
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.count,
            "uptime_s": round(time.time() - self.started, 3),
            "by_path": dict(self.by_path),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "by_authorization": dict(self.by_authorization),
        }


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def wait_for_disconnect(receive: Receive, limit_s: float) -> None:
    """Hold the request until the client gives up or `limit_s` passes (an injected timeout)."""

    async def until_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(until_disconnect(), limit_s)


def rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1")
    return value


def latency(text: str) -> Latency:
    try:
        return Latency.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535; 0 picks a free port)")
    return int(text)


def listen_defaults(environ: MutableMapping[str, str]) -> tuple[str, str]:
    """Host and port defaults: MOCK_UPSTREAM_PORT, else LISTEN_ADDR (`:8080` means every interface)."""
    host, port = "127.0.0.1", str(DEFAULT_PORT)
    listen = environ.get("LISTEN_ADDR", "")
    if listen:
        addr_host, _, addr_port = listen.rpartition(":")
        host = addr_host or "0.0.0.0"
        port = addr_port or port
    return host, environ.get("MOCK_UPSTREAM_PORT", port)


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ
    host, port = listen_defaults(env)
    parser = argparse.ArgumentParser(
        prog="python -m llmproxy mock-upstream",
        description="An OpenAI-compatible fake upstream. Latency specs: 50, fixed:50, uniform:LO:HI, "
        "normal:MEAN:SD, exponential:MEAN, lognormal:MEDIAN:SIGMA (milliseconds).",
    )
    parser.add_argument(
        "--host", default=host, help="address to bind (env LISTEN_ADDR host part) [%(default)s]"
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=port,
        help="port; 0 picks a free one (env MOCK_UPSTREAM_PORT, LISTEN_ADDR)",
    )
    parser.add_argument(
        "--latency",
        type=latency,
        default=env.get("MOCK_LATENCY", "0"),
        help="response time distribution, ms (env MOCK_LATENCY) [0]",
    )
    parser.add_argument(
        "--ttft",
        type=latency,
        default=env.get("MOCK_TTFT"),
        help="stream time to first token, ms (env MOCK_TTFT) [the --latency draw]",
    )
    parser.add_argument(
        "--inter-token-ms",
        type=non_negative,
        default=env.get("MOCK_INTER_TOKEN_MS", "0"),
        help="delay between stream chunks (env MOCK_INTER_TOKEN_MS) [0]",
    )
    parser.add_argument(
        "--completion-tokens",
        type=int,
        default=int(env.get("MOCK_COMPLETION_TOKENS", "16")),
        help="completion tokens per answer unless max_tokens is lower (env MOCK_COMPLETION_TOKENS) [16]",
    )
    parser.add_argument(
        "--embedding-dim",
        type=int,
        default=int(env.get("MOCK_EMBEDDING_DIM", "64")),
        help="embedding size unless the request sets `dimensions` (env MOCK_EMBEDDING_DIM) [64]",
    )
    parser.add_argument(
        "--error-rate-429",
        type=rate,
        default=env.get("MOCK_ERROR_RATE_429", "0"),
        help="share of /v1 requests answered 429 (env MOCK_ERROR_RATE_429) [0]",
    )
    parser.add_argument(
        "--error-rate-500",
        type=rate,
        default=env.get("MOCK_ERROR_RATE_500", "0"),
        help="share of /v1 requests answered 500 (env MOCK_ERROR_RATE_500) [0]",
    )
    parser.add_argument(
        "--timeout-rate",
        type=rate,
        default=env.get("MOCK_TIMEOUT_RATE", "0"),
        help="share of /v1 requests held until --hang-s, then 504 (env MOCK_TIMEOUT_RATE) [0]",
    )
    parser.add_argument(
        "--hang-s",
        type=non_negative,
        default=env.get("MOCK_HANG_S", "30"),
        help="how long an injected timeout holds the request (env MOCK_HANG_S) [30]",
    )
    parser.add_argument(
        "--expected-api-key",
        default=env.get("MOCK_EXPECTED_API_KEY"),
        help="answer 401 unless Authorization is 'Bearer KEY' (env MOCK_EXPECTED_API_KEY)",
    )
    parser.add_argument(
        "--models", default=env.get("MOCK_MODELS", DEFAULT_MODELS), help="comma-separated model ids"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for latency and error draws")
    args = parser.parse_args(argv)
    if args.error_rate_429 + args.error_rate_500 + args.timeout_rate > 1.0:
        parser.error("--error-rate-429 + --error-rate-500 + --timeout-rate must not exceed 1")
    if args.completion_tokens < 0:
        parser.error("--completion-tokens must be >= 0")
    if not 1 <= args.embedding_dim <= 4096:
        parser.error("--embedding-dim must be between 1 and 4096")
    return args


def config_from(args: argparse.Namespace) -> MockConfig:
    return MockConfig(
        latency=args.latency,
        ttft=args.ttft,
        inter_token_ms=args.inter_token_ms,
        completion_tokens=args.completion_tokens,
        embedding_dim=args.embedding_dim,
        rate_429=args.error_rate_429,
        rate_500=args.error_rate_500,
        rate_timeout=args.timeout_rate,
        hang_s=args.hang_s,
        expected_api_key=args.expected_api_key,
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        seed=args.seed,
    )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def main(argv: list[str]) -> int:
    """Bind, print the address, serve until SIGTERM/SIGINT, exit 0."""
    import uvicorn

    args = parse_args(argv)
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(
            f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}\n"
            "fix: pick another port with --port (0 picks a free one) or MOCK_UPSTREAM_PORT",
            file=sys.stderr,
        )
        return 1
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        MockUpstream(config_from(args)),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal it caught once it has shut down; with these handlers in place,
    # that re-raise is harmless and the process exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    print(f"mock-upstream listening on http://{host}:{port}", flush=True)
    server.run(sockets=[sock])
    return 0
