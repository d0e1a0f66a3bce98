"""HTTP response cache in Redis, per project (one tenant never sees another's answers).

Semantics of the upstream proxy: GET/HEAD responses are stored for the upstream's `s-maxage`/`max-age`;
POST responses only when the client asks with `Cache-Control: public, max-age=N`. A client's `no-cache`
or `no-store` bypasses the cache. Any Redis error is a miss. Values are JSON
`{status_code, headers, body|body_b64, method, url, stored_at}` under `<prefix><project>:<sha256>`.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

from llmproxy.redis_conn import Breaker

# Response headers never replayed from the cache (hop-by-hop or per-response).
UNCACHED_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"content-length",
        b"date",
        b"x-request-id",
        b"set-cookie",
    }
)


@dataclass(frozen=True)
class CachedResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    age: int


@dataclass(frozen=True)
class CachePolicy:
    """What to do for one request: look up, and store for how long (0 = from the response)."""

    lookup: bool
    client_ttl: int


def parse_cache_control(value: str) -> dict[str, str]:
    directives: dict[str, str] = {}
    for part in value.split(","):
        name, _, arg = part.strip().partition("=")
        if name:
            directives[name.lower()] = arg.strip().strip('"')
    return directives


def _seconds(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def request_policy(method: str, cache_control: str | None) -> CachePolicy | None:
    """None = bypass the cache for this request."""
    directives = parse_cache_control(cache_control) if cache_control else {}
    if "no-store" in directives or "no-cache" in directives:
        return None
    if method in ("GET", "HEAD"):
        return CachePolicy(lookup=True, client_ttl=0)
    if method == "POST" and "public" in directives:
        ttl = _seconds(directives.get("max-age"))
        if ttl > 0:
            return CachePolicy(lookup=True, client_ttl=ttl)
    return None


def response_ttl(policy: CachePolicy, status: int, cache_control: str | None) -> int:
    """Seconds to keep this response, 0 = do not store."""
    if status != 200:
        return 0
    directives = parse_cache_control(cache_control) if cache_control else {}
    if "no-store" in directives or "private" in directives:
        return 0
    if policy.client_ttl:
        return policy.client_ttl
    return _seconds(directives.get("s-maxage") or directives.get("max-age"))


class HttpCache:
    def __init__(self, client: redis.Redis, prefix: str, max_body: int) -> None:
        self._client = client
        self.prefix = prefix
        self._max_body = max_body
        self._breaker = Breaker()

    def key(self, project_id: str, method: str, target: str, body: bytes, vary: bytes) -> str:
        digest = hashlib.sha256()
        for part in (method.encode(), target.encode(), vary, body):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return f"{self.prefix}{project_id}:{digest.hexdigest()}"

    async def get(self, key: str) -> CachedResponse | None:
        if not self._breaker.closed:
            return None
        try:
            raw = await self._client.get(key)
        except (RedisError, OSError):
            self._breaker.trip()
            return None
        if raw is None:
            return None
        try:
            value = orjson.loads(raw)
            body = base64.b64decode(value["body_b64"]) if "body_b64" in value else value["body"].encode()
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in value["headers"]]
            return CachedResponse(
                status=int(value["status_code"]),
                headers=headers,
                body=body,
                age=max(0, int(time.time() - value["stored_at"])),
            )
        except (ValueError, KeyError, TypeError):
            return None

    async def store(
        self,
        key: str,
        ttl: int,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        method: str,
        target: str,
    ) -> bool:
        if len(body) > self._max_body or not self._breaker.closed:
            return False
        value: dict[str, object] = {
            "status_code": status,
            "headers": [
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in headers
                if k.lower() not in UNCACHED_HEADERS
            ],
            "method": method,
            "url": target,
            "stored_at": time.time(),
        }
        try:
            value["body"] = body.decode()
        except UnicodeDecodeError:
            value["body_b64"] = base64.b64encode(body).decode()
        try:
            await self._client.set(key, orjson.dumps(value), ex=ttl)
        except (RedisError, OSError):
            self._breaker.trip()
            return False
        return True

    async def purge(self, method: str, target: str, prefix: str | None) -> int:
        """Delete the entries of one method+URL (or every URL under `prefix`) in every project."""
        deleted = 0
        async for keys in self._scan_batches():
            values = await self._client.mget(keys)
            doomed = []
            for key, raw in zip(keys, values, strict=True):
                if raw is None:
                    continue
                try:
                    entry = orjson.loads(raw)
                except ValueError:
                    continue
                url = str(entry.get("url", ""))
                if entry.get("method") != method:
                    continue
                if url == target or (prefix is not None and url.startswith(prefix)):
                    doomed.append(key)
            if doomed:
                deleted += int(await self._client.delete(*doomed))
        return deleted

    async def _scan_batches(self) -> AsyncIterator[list[bytes | str]]:
        cursor = 0
        while True:
            cursor, keys = await self._client.scan(cursor, match=f"{self.prefix}*", count=500)
            if keys:
                yield keys
            if cursor == 0:
                return
