"""Per-token requests-per-minute limit shared by every replica (a fixed one-minute window in Redis)."""

from __future__ import annotations

import math
import time

import redis.asyncio as redis
from redis.exceptions import RedisError

from llmproxy.redis_conn import Breaker


class RateLimiter:
    def __init__(self, client: redis.Redis, rpm: int, prefix: str = "llmproxy:ratelimit:") -> None:
        self._client = client
        self._rpm = rpm
        self._prefix = prefix
        self._breaker = Breaker()

    async def check(self, token_id: str) -> int | None:
        """None when the request may pass, else the seconds to wait. Fails open while Redis is down."""
        if not self._breaker.closed:
            return None
        now = time.time()
        window = int(now // 60)
        key = f"{self._prefix}{token_id}:{window}"
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                count, _ = await pipe.execute()
        except (RedisError, OSError):
            self._breaker.trip()
            return None
        if int(count) <= self._rpm:
            return None
        return max(1, math.ceil((window + 1) * 60 - now))
