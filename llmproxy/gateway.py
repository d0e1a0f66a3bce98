"""The /v1 hot path, as a raw ASGI handler: allow-list, token check, rate limit, cache, upstream call.

Every request that reaches this handler yields exactly one audit event (errors and cache hits too),
queued in memory for the event bus (never awaited). SSE streams are forwarded chunk by chunk.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from llmproxy.auth import TokenRecord, TokenStoreUnavailable, TokenValidator
from llmproxy.events import EventPublisher
from llmproxy.httpcache import CachePolicy, HttpCache, request_policy, response_ttl
from llmproxy.keys import TOKEN_PATTERN, hash_token
from llmproxy.metrics import Counters
from llmproxy.ratelimit import RateLimiter
from llmproxy.settings import AllowList
from llmproxy.upstream import UpstreamError, UpstreamPool

log = logging.getLogger("llmproxy.gateway")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Request headers not forwarded upstream (hop-by-hop, or replaced by the proxy).
DROPPED_REQUEST_HEADERS = frozenset(
    {
        b"host",
        b"authorization",
        b"content-length",
        b"connection",
        b"expect",
        b"keep-alive",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"x-request-id",
    }
)
DROPPED_RESPONSE_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"x-request-id", b"upgrade"}
)
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
JSON_HEADERS = [(b"content-type", b"application/json")]


class Reply(Exception):
    """An error answered by the proxy itself, in the upstream's JSON error shape."""

    def __init__(
        self, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []


@dataclass
class Exchange:
    """What one request did, for its audit event and response headers."""

    request_id: str
    started: float
    record: TokenRecord | None = None
    status: int = 0
    reason: str | None = None
    cache: str = "bypass"
    upstream_ms: float | None = None
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class Gateway:
    allow: AllowList
    validator: TokenValidator
    publisher: EventPublisher
    counters: Counters
    cache: HttpCache | None
    limiter: RateLimiter | None
    upstream: UpstreamPool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        received_at = time.time()
        auth = request_id = cache_control = user_agent = forwarded_for = None
        vary = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"cache-control":
                cache_control = value.decode("latin-1")
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded_for = value.decode("latin-1")
            elif name in (b"accept", b"accept-encoding"):
                vary += name + b"=" + value + b";"
        if request_id is None or not REQUEST_ID_PATTERN.match(request_id):
            request_id = uuid.uuid4().hex
        exchange = Exchange(request_id=request_id, started=started)
        counters = self.counters
        counters.request_count += 1
        counters.in_flight += 1
        try:
            await self._serve(scope, receive, send, exchange, auth, cache_control, vary, received_at)
        except Reply as reply:
            exchange.status, exchange.reason = reply.status, reply.code
            await self._reply(send, exchange, reply)
        except Exception:
            log.exception("request %s failed", request_id)
            exchange.status, exchange.reason = 500, "internal_error"
            raise
        finally:
            counters.in_flight -= 1
            if exchange.status >= 400:
                counters.error_count += 1
            self._audit(scope, exchange, user_agent, forwarded_for)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: Exchange,
        auth: bytes | None,
        cache_control: str | None,
        vary: bytes,
        received_at: float,
    ) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        if not self.allow.path_allowed(path):
            raise Reply(404, "not_found", f"{path} is not an allowed endpoint")
        if method not in self.allow.methods:
            raise Reply(
                405, "method_not_allowed", f"{method} is not allowed", [(b"allow", self._allow_header())]
            )
        if method == "OPTIONS":
            exchange.status = 204
            await send(
                {"type": "http.response.start", "status": 204, "headers": [(b"allow", self._allow_header())]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        record = await self._authenticate(auth)
        exchange.record = record
        if self.limiter is not None:
            wait = await self.limiter.check(record.token_id)
            if wait is not None:
                self.counters.rate_limited += 1
                raise Reply(
                    429,
                    "rate_limit_exceeded",
                    "too many requests for this token; retry later",
                    [(b"retry-after", str(wait).encode())],
                )
        body = await _read_body(receive)
        if self.allow.models and body:
            self._check_model(body)
        try:
            use = await self.validator.count_use(record)
        except TokenStoreUnavailable:
            raise Reply(503, "database_unavailable", "the token store cannot be read; retry later") from None
        if use == "revoked":
            raise Reply(401, "token_inactive", "this token (or its project) has been deactivated")
        if use == "exhausted":
            raise Reply(429, "rate_limit_exceeded", "this token has used up its max_requests")

        query = scope["query_string"]
        target = path + "?" + query.decode("latin-1") if query else path
        policy = request_policy(method, cache_control) if self.cache is not None else None
        cache_key = None
        if policy is not None and self.cache is not None:
            cache_key = self.cache.key(record.project_id, method, target, body, vary)
            hit = await self.cache.get(cache_key)
            if hit is not None:
                exchange.cache = "hit"
                self.counters.cache_hits += 1
                self.validator.count_cache_hit(record)
                headers = [
                    *hit.headers,
                    (b"content-length", str(len(hit.body)).encode()),
                    (b"age", str(hit.age).encode()),
                    (b"cache-status", b"llm-proxy; hit"),
                    (b"x-proxy-cache", b"hit"),
                    *self._timing(exchange, received_at),
                ]
                exchange.status = hit.status
                await send({"type": "http.response.start", "status": hit.status, "headers": headers})
                await send({"type": "http.response.body", "body": b"" if method == "HEAD" else hit.body})
                return
            exchange.cache = "miss"
            self.counters.cache_misses += 1
        else:
            self.counters.cache_bypass += 1
        await self._forward(
            scope, receive, send, exchange, record, method, target, body, policy, cache_key, received_at
        )

    async def _authenticate(self, auth: bytes | None) -> TokenRecord:
        if auth is None:
            raise Reply(401, "invalid_token", "missing Authorization: Bearer sk-... header")
        scheme, _, token = auth.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not TOKEN_PATTERN.match(token):
            raise Reply(401, "invalid_token", "the Authorization header must be `Bearer sk-` + 22 characters")
        try:
            record = await self.validator.lookup(hash_token(token))
        except TokenStoreUnavailable:
            raise Reply(503, "database_unavailable", "the token store cannot be read; retry later") from None
        if record is None:
            raise Reply(401, "token_not_found", "unknown token")
        if not record.active:
            raise Reply(401, "token_inactive", "this token (or its project) has been deactivated")
        if record.expires_at is not None and time.time() >= record.expires_at:
            raise Reply(401, "token_expired", "this token has expired")
        if not record.upstream_key:
            raise Reply(503, "upstream_key_unavailable", "the project's upstream API key cannot be decrypted")
        return record

    def _check_model(self, body: bytes) -> None:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        model = document.get("model") if isinstance(document, dict) else None
        if isinstance(model, str) and model not in self.allow.models:
            raise Reply(400, "param_not_allowed", f"model {model!r} is not allowed")

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: Exchange,
        record: TokenRecord,
        method: str,
        target: str,
        body: bytes,
        policy: CachePolicy | None,
        cache_key: str | None,
        received_at: float,
    ) -> None:
        lines = [
            name + b": " + value + b"\r\n"
            for name, value in scope["headers"]
            if name not in DROPPED_REQUEST_HEADERS
        ]
        lines.append(b"Authorization: Bearer " + record.upstream_key.encode() + b"\r\n")
        lines.append(b"X-Request-ID: " + exchange.request_id.encode() + b"\r\n")
        upstream_started = time.perf_counter()
        try:
            response = await self.upstream.request(method, target, lines, body)
        except UpstreamError as exc:
            self.counters.upstream_errors += 1
            if exc.kind == "timeout":
                raise Reply(504, "upstream_timeout", "the upstream did not answer in time") from None
            raise Reply(502, "upstream_unavailable", f"the upstream cannot be reached ({exc})") from None
        try:
            out = [(k, v) for k, v in response.headers if k.lower() not in DROPPED_RESPONSE_HEADERS]
            content_type = response.header(b"content-type") or b""
            streamed = (
                content_type.startswith(b"text/event-stream") or response.header(b"content-length") is None
            )
            if exchange.cache == "miss":
                out.append((b"cache-status", b"llm-proxy; fwd=miss"))
                out.append((b"x-proxy-cache", b"miss"))
            elif exchange.cache == "bypass":
                out.append((b"x-proxy-cache", b"bypass"))
            exchange.status = response.status
            if not streamed:
                try:
                    payload = await response.read()
                except UpstreamError:
                    self.counters.upstream_errors += 1
                    raise Reply(502, "upstream_error", "the upstream response was cut short") from None
                exchange.upstream_ms = (time.perf_counter() - upstream_started) * 1000
                out.append((b"content-length", str(len(payload)).encode()))
                out.extend(self._timing(exchange, received_at))
                if policy is not None and cache_key is not None and self.cache is not None:
                    cache_control = response.header(b"cache-control")
                    ttl = response_ttl(
                        policy, response.status, cache_control.decode("latin-1") if cache_control else None
                    )
                    if ttl > 0:
                        # Stored before the reply goes out, so the client's next identical request hits:
                        # one Redis round trip, paid only by responses the client asked to cache.
                        await self._store(cache_key, ttl, response.status, out, payload, method, target)
                await send({"type": "http.response.start", "status": response.status, "headers": out})
                await send({"type": "http.response.body", "body": payload})
                return
            exchange.upstream_ms = (time.perf_counter() - upstream_started) * 1000
            out.extend(self._timing(exchange, received_at))
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            # The request body is read: the next message is the client's disconnect. A client gone
            # mid-stream stops the upstream read (its connection is closed, not read to the end).
            client_gone = asyncio.ensure_future(receive())
            try:
                async for chunk in response.chunks():
                    if client_gone.done():
                        self.counters.client_disconnects += 1
                        exchange.reason = "client_disconnected"
                        return
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError as exc:
                self.counters.upstream_errors += 1
                exchange.reason = "upstream_stream_interrupted"
                log.warning("request %s: upstream stream interrupted (%s)", exchange.request_id, exc)
            finally:
                client_gone.cancel()
            await send({"type": "http.response.body", "body": b""})
        finally:
            response.release()

    async def _store(
        self,
        key: str,
        ttl: int,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        method: str,
        target: str,
    ) -> None:
        assert self.cache is not None
        stored_headers = [(k, v) for k, v in headers if not k.startswith((b"x-proxy-", b"cache-status"))]
        if await self.cache.store(key, ttl, status, stored_headers, body, method, target):
            self.counters.cache_stores += 1

    def _timing(self, exchange: Exchange, received_at: float) -> list[tuple[bytes, bytes]]:
        total_ms = (time.perf_counter() - exchange.started) * 1000
        headers = [
            (b"x-request-id", exchange.request_id.encode()),
            (b"x-proxy-received-at", f"{received_at:.6f}".encode()),
            (b"x-proxy-duration-ms", f"{total_ms:.3f}".encode()),
        ]
        if exchange.upstream_ms is not None:
            headers.append((b"x-proxy-upstream-ms", f"{exchange.upstream_ms:.3f}".encode()))
            headers.append(
                (b"x-proxy-overhead-ms", f"{max(0.0, total_ms - exchange.upstream_ms):.3f}".encode())
            )
        return headers

    def _allow_header(self) -> bytes:
        return ", ".join(sorted(self.allow.methods)).encode()

    async def _reply(self, send: Send, exchange: Exchange, reply: Reply) -> None:
        body = orjson.dumps({"error": reply.message, "code": reply.code})
        headers = [
            *JSON_HEADERS,
            (b"content-length", str(len(body)).encode()),
            *reply.headers,
            *self._timing(exchange, time.time()),
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _audit(
        self, scope: Scope, exchange: Exchange, user_agent: str | None, forwarded_for: str | None
    ) -> None:
        record = exchange.record
        client = scope.get("client")
        client_ip = forwarded_for.split(",")[0].strip() if forwarded_for else (client[0] if client else None)
        status = exchange.status
        self.publisher.publish(
            {
                "id": str(uuid.uuid4()),
                "timestamp": time.time(),
                "action": "proxy.request",
                "actor": record.token_id if record else "anonymous",
                "outcome": "success" if 0 < status < 400 and exchange.reason is None else "failure",
                "reason": exchange.reason,
                "request_id": exchange.request_id,
                "project_id": record.project_id if record else None,
                "token_id": record.token_id if record else None,
                "client_ip": client_ip,
                "method": scope["method"],
                "path": scope["path"],
                "user_agent": user_agent,
                "metadata": {
                    "status": status,
                    "duration_ms": round((time.perf_counter() - exchange.started) * 1000, 3),
                    "upstream_ms": round(exchange.upstream_ms, 3)
                    if exchange.upstream_ms is not None
                    else None,
                    "cache": exchange.cache,
                },
            }
        )


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    parts = [body]
    while message.get("more_body", False):
        message = await receive()
        parts.append(message.get("body", b""))
    return b"".join(parts)
