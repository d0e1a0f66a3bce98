"""The proxy's ASGI application: its collaborators (pools, clients) and the top-level routing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import redis.asyncio as redis

from llmproxy import __version__
from llmproxy.auth import TokenValidator
from llmproxy.db import connect_pool, migrate, verify_encryption_key
from llmproxy.events import EventPublisher
from llmproxy.gateway import Gateway, Receive, Scope, Send
from llmproxy.httpcache import HttpCache
from llmproxy.keys import KeyBox
from llmproxy.management.handlers import Management
from llmproxy.management.routes import management_app
from llmproxy.metrics import Counters, prometheus_text
from llmproxy.ratelimit import RateLimiter
from llmproxy.redis_conn import make_redis
from llmproxy.settings import ProxySettings
from llmproxy.upstream import UpstreamPool

CHECK_TIMEOUT = 1.0


@dataclass
class Services:
    settings: ProxySettings
    pool: asyncpg.Pool
    cache_client: redis.Redis
    event_client: redis.Redis
    upstream: UpstreamPool
    publisher: EventPublisher
    validator: TokenValidator
    gateway: Gateway
    management: Any
    counters: Counters
    draining: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def close(self) -> None:
        """After the server stopped: flush events and usage counters, then close every pool."""
        await self.publisher.close(self.settings.event_flush_timeout)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.validator.flush_counts()
        self.upstream.close()
        await self.cache_client.aclose()
        if self.event_client is not self.cache_client:
            await self.event_client.aclose()
        await self.pool.close()


async def build_services(settings: ProxySettings) -> Services:
    """Connect, migrate and check the encryption key; raises DatabaseUnavailable or DecryptionError."""
    box = KeyBox(settings.encryption_key)
    pool = await connect_pool(
        settings.database_url, settings.database_pool_size, settings.database_connect_timeout
    )
    try:
        await migrate(pool)
        await verify_encryption_key(pool, box)
    except BaseException:
        await pool.close()
        raise
    cache_client = make_redis(settings.cache_redis)
    event_client = (
        cache_client if settings.event_redis == settings.cache_redis else make_redis(settings.event_redis)
    )
    publisher = EventPublisher(
        client=event_client,
        stream_key=settings.stream_key,
        max_len=settings.stream_max_len,
        buffer_size=settings.event_buffer_size,
        batch_size=settings.event_batch_size,
        replay_window=settings.event_replay_window,
        monitor_interval=settings.event_monitor_interval,
    )
    publisher.start()
    validator = TokenValidator(pool, box, settings.token_cache_ttl)
    upstream = UpstreamPool(settings.upstream_url, settings.connect_timeout, settings.request_timeout)
    cache = (
        HttpCache(cache_client, settings.cache_key_prefix, settings.cache_max_body_bytes)
        if settings.cache_enabled
        else None
    )
    limiter = RateLimiter(cache_client, settings.rate_limit_rpm) if settings.rate_limit_rpm else None
    counters = Counters()
    gateway = Gateway(
        allow=settings.allow,
        validator=validator,
        publisher=publisher,
        counters=counters,
        cache=cache,
        limiter=limiter,
        upstream=upstream,
    )
    management = management_app(
        Management(
            pool=pool,
            box=box,
            management_token=settings.management_token,
            validator=validator,
            publisher=publisher,
            cache=cache,
        )
    )
    services = Services(
        settings=settings,
        pool=pool,
        cache_client=cache_client,
        event_client=event_client,
        upstream=upstream,
        publisher=publisher,
        validator=validator,
        gateway=gateway,
        management=management,
        counters=counters,
    )
    services.tasks.append(asyncio.create_task(validator.flush_forever(), name="usage-flush"))
    return services


async def _ping(client: redis.Redis) -> Any:
    """PING, once more on a fresh connection when a pooled one turns out closed: a restart or a network cut
    leaves every pooled connection dead until its next use, which says nothing about Redis now."""
    try:
        return await client.ping()
    except redis.ConnectionError:
        return await client.ping()


async def _timed_check(probe: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT)
    except Exception as exc:
        detail = str(exc) or type(exc).__name__
        return {
            "status": "down",
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "error": f"{type(exc).__name__}: {detail}"[:300],
        }
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 3)}


async def _send_json(send: Send, status: int, payload: Any) -> None:
    await _send(send, status, orjson.dumps(payload), b"application/json")


async def _send(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ProxyApp:
    """Routes /v1/* to the gateway, /manage/* to the management API, and serves the probes itself."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.gateway = services.gateway
        self.management = services.management

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/v1/"):
            await self.gateway(scope, receive, send)
        elif path.startswith("/manage/"):
            await self.management(scope, receive, send)
        elif path == "/health":
            await self.health(send)
        elif path == "/ready":
            if self.services.draining:
                await _send(send, 503, b"draining", b"text/plain")
            else:
                await _send(send, 200, b"ready", b"text/plain")
        elif path == "/live":
            await _send(send, 200, b"alive", b"text/plain")
        elif path == "/metrics":
            await _send_json(send, 200, self.metrics())
        elif path == "/metrics/prometheus":
            await _send(send, 200, prometheus_text(self.metrics()).encode(), b"text/plain; version=0.0.4")
        else:
            await _send_json(send, 404, {"error": f"no route {path}", "code": "not_found"})

    async def health(self, send: Send) -> None:
        services = self.services
        probes: dict[str, Callable[[], Awaitable[Any]]] = {
            "database": lambda: services.pool.fetchval("SELECT 1"),
            "redis": lambda: _ping(services.cache_client),
        }
        if services.event_client is not services.cache_client:
            probes["redis_events"] = lambda: _ping(services.event_client)
        results = await asyncio.gather(*(_timed_check(p) for p in probes.values()))
        checks = dict(zip(probes, results, strict=True))
        failing = [name for name, check in checks.items() if check["status"] != "ok"]
        if checks["database"]["status"] != "ok":
            status, code = "down", 503
        elif failing:
            status, code = "degraded", 200
        else:
            status, code = "ok", 200
        payload: dict[str, Any] = {
            "status": status,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "version": __version__,
            "checks": checks,
        }
        if failing:
            payload["failing"] = failing
        if services.draining:
            payload["draining"] = True
        await _send_json(send, code, payload)

    def metrics(self) -> dict[str, float]:
        publisher = self.services.publisher
        stats = publisher.stats
        return self.services.counters.snapshot(
            {
                "events_buffered": publisher.buffered,
                "events_published": stats.published,
                "events_republished": stats.republished,
                "events_dropped": stats.dropped,
                "events_redis_errors": stats.redis_errors,
                "events_redis_resets": stats.redis_resets,
            }
        )
