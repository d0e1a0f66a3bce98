"""Per-token requests-per-minute limit shared by every replica: a sliding one-minute log in Redis.

One Lua call per request (atomic across replicas); a refused request does not use up the window.
"""

from __future__ import annotations

import math
import os
import time

import redis.asyncio as redis
from redis.exceptions import RedisError

from llmproxy.redis_conn import Breaker

WINDOW = 60.0
SLIDING_WINDOW = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
  return ''
end
return redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
"""


class RateLimiter:
    def __init__(self, client: redis.Redis, rpm: int, prefix: str = "llmproxy:ratelimit:") -> None:
        self._script = client.register_script(SLIDING_WINDOW)
        self._rpm = rpm
        self._prefix = prefix
        self._breaker = Breaker()

    async def check(self, token_id: str) -> int | None:
        """None when the request may pass, else the seconds to wait. Fails open while Redis is down."""
        if not self._breaker.closed:
            return None
        now = time.time()
        member = f"{now:.6f}:{os.urandom(4).hex()}"
        try:
            oldest = await self._script(keys=[self._prefix + token_id], args=[now, WINDOW, self._rpm, member])
        except (RedisError, OSError):
            self._breaker.trip()
            return None
        if not oldest:
            return None
        return max(1, math.ceil(float(oldest) + WINDOW - now))
