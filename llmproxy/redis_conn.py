"""Redis clients from REDIS_*_URL: passwords in the URL; `rediss://` is TLS (CA bundle: REDIS_CA_FILE)."""

from __future__ import annotations

import time

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from llmproxy.settings import RedisSettings


def make_redis(settings: RedisSettings, max_connections: int = 128) -> redis.Redis:
    """A client that fails fast: callers own the retry policy (the hot path must never wait long on Redis).

    The pool blocks (up to the Redis timeout) when every connection is busy, instead of failing the call:
    under a burst, a short wait beats a cache miss and a tripped breaker.
    """
    options: dict[str, object] = {
        "socket_timeout": settings.timeout,
        "socket_connect_timeout": settings.timeout,
        "retry": Retry(NoBackoff(), 0),
        "max_connections": max_connections,
        "timeout": settings.timeout,
    }
    if settings.url.startswith("rediss://") and settings.ca_file:
        options["ssl_ca_certs"] = settings.ca_file
    pool = redis.BlockingConnectionPool.from_url(settings.url, **options)
    return redis.Redis.from_pool(pool)


class Breaker:
    """After a Redis failure, skip Redis for `cooldown` seconds instead of paying a timeout per request."""

    def __init__(self, cooldown: float = 1.0) -> None:
        self.cooldown = cooldown
        self._open_until = 0.0

    @property
    def closed(self) -> bool:
        return time.monotonic() >= self._open_until

    def trip(self) -> None:
        self._open_until = time.monotonic() + self.cooldown
