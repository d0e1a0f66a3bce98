"""Per-token requests-per-minute limit shared by every replica: a sliding one-minute log in Redis."""

from __future__ import annotations

import math
import os
import time

import redis.asyncio as redis
from redis.exceptions import RedisError

from llmproxy.redis_conn import Breaker

WINDOW = 60.0


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
        key = self._prefix + token_id
        member = f"{now:.6f}:{os.urandom(4).hex()}"
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, 0, now - WINDOW)
                pipe.zadd(key, {member: now})
                pipe.zcard(key)
                pipe.zrange(key, 0, 0, withscores=True)
                pipe.expire(key, int(WINDOW) + 1)
                _, _, count, oldest, _ = await pipe.execute()
            if int(count) <= self._rpm:
                return None
            await self._client.zrem(key, member)  # refused requests do not use up the window
        except (RedisError, OSError):
            self._breaker.trip()
            return None
        oldest_at = float(oldest[0][1]) if oldest else now
        return max(1, math.ceil(oldest_at + WINDOW - now))
