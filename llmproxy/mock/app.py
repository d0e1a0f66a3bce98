"""The mock upstream's ASGI application: routes, OpenAI-shaped answers, latency and injected failures.

Raw ASGI (no framework), so that the fake outruns the proxy it stands behind.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from llmproxy.mock.errors import CUT, TIMEOUT, RequestError, injected_outcome, status_error, timed_out
from llmproxy.mock.options import MockOptions
from llmproxy.mock.text import embedding_vector, prompt_usage, text_tokens, words_for

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_TRACKED_AUTHORIZATIONS = 1000
DONE = b"data: [DONE]\n\n"


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


def model_of(document: dict[str, Any]) -> str:
    """The request's `model`, which every endpoint requires (a 400 as OpenAI's when it is missing)."""
    model = document.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(400, "you must provide a model parameter", "missing_model")
    return model


def sse(document: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(document) + b"\n\n"


async def sleep_ms(delay: float) -> None:
    if delay > 0:
        await asyncio.sleep(delay / 1000)


class MockUpstream:
    """The ASGI application."""

    def __init__(self, options: MockOptions) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
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
                    for m in options.models
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
        expected = self.options.expected_api_key
        if expected is not None and call.authorization != f"Bearer {expected}".encode():
            raise RequestError(401, "Incorrect API key provided.", "invalid_api_key")

    async def injected_failure(self, call: Call, receive: Receive) -> RequestError | None:
        """The error this request should get, after its latency; `cut` marks the call instead."""
        outcome = injected_outcome(call.headers.get(b"x-mock-error"), self.rng.random, self.options)
        if outcome is None:
            return None
        if outcome == CUT:
            call.cut = True
            return None
        if outcome == TIMEOUT:
            await wait_for_disconnect(receive, self.options.hang_s)
            return timed_out()
        error = status_error(outcome)
        await sleep_ms(self.latency_ms(call))
        return error

    def latency_ms(self, call: Call) -> float:
        """Response time of an answer generated at once: X-Mock-Latency-Ms, else a --latency draw."""
        override = call.override_ms(b"x-mock-latency-ms")
        return override if override is not None else self.options.latency.sample(self.rng)

    def first_token_ms(self, call: Call) -> float:
        """A completion's time to first token: X-Mock-TTFT-Ms, X-Mock-Latency-Ms, a --ttft draw, or
        a --latency draw, the first that is set."""
        for header in (b"x-mock-ttft-ms", b"x-mock-latency-ms"):
            override = call.override_ms(header)
            if override is not None:
                return override
        return (self.options.ttft or self.options.latency).sample(self.rng)

    def token_gap_ms(self, call: Call) -> float:
        """Generation time of each further token: X-Mock-Inter-Token-Ms, else --inter-token-ms."""
        override = call.override_ms(b"x-mock-inter-token-ms")
        return self.options.inter_token_ms if override is None else override

    async def generate(self, call: Call, tokens: int) -> None:
        """Wait as long as generating a whole answer of `tokens` takes (an answer that is not streamed)."""
        await sleep_ms(self.first_token_ms(call) + tokens * self.token_gap_ms(call))

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
            and 1 <= limit < self.options.completion_tokens
        ):
            return limit, "length"
        return self.options.completion_tokens, "stop"

    async def chat_completions(self, call: Call, send: Send, receive: Receive) -> int:
        document = call.json()
        messages = document.get("messages")
        model = model_of(document)
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
        await self.generate(call, count)
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
        model = model_of(document)
        prompt = document.get("prompt")
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
        await self.generate(call, count)
        choice = {"index": 0, "text": " " + " ".join(words), "logprobs": None, "finish_reason": finish}
        await self.send_json(call, send, 200, orjson.dumps({**base, "choices": [choice], "usage": usage}))
        return 200

    async def embeddings(self, call: Call, send: Send, receive: Receive) -> int:
        document = call.json()
        model = model_of(document)
        raw_input = document.get("input")
        if isinstance(raw_input, str) or (
            isinstance(raw_input, list) and raw_input and all(isinstance(x, int) for x in raw_input)
        ):
            inputs: list[Any] = [raw_input]
        elif isinstance(raw_input, list) and raw_input:
            inputs = raw_input
        else:
            raise RequestError(400, "'input' must be a string or a non-empty array", "invalid_input")
        dim = document.get("dimensions", self.options.embedding_dim)
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
        await sleep_ms(self.latency_ms(call))
        body = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
        await self.send_json(call, send, 200, orjson.dumps(body))
        return 200

    async def list_models(self, call: Call, send: Send, receive: Receive) -> int:
        await sleep_ms(self.latency_ms(call))
        await self.send_json(call, send, 200, self.models_body)
        return 200

    async def stream(self, call: Call, send: Send, chunks: list[bytes]) -> None:
        """An SSE stream: headers and first chunk after the time to first token, then one chunk per gap."""
        ttft = self.first_token_ms(call)
        gap = self.token_gap_ms(call)
        await sleep_ms(ttft)
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
                await sleep_ms(gap)
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
        body = exc.body()
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
