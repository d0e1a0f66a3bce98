"""Client token validation with an in-process cache of bounded staleness (TOKEN_CACHE_TTL seconds).

A revocation made through this replica's management API is visible at once; one made elsewhere within
the TTL. Tokens with `max_requests` are counted by an atomic UPDATE per request (exact across replicas);
unlimited tokens' counters are summed in memory and flushed once a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import asyncpg

from llmproxy.keys import DecryptionError, KeyBox

log = logging.getLogger("llmproxy.auth")

DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError)
MAX_CACHED = 50_000

LOOKUP_SQL = """
SELECT t.id::text AS id, t.project_id::text AS project_id, extract(epoch FROM t.expires_at) AS expires_at,
       t.is_active AND p.is_active AS active, t.max_requests, p.api_key
FROM tokens t JOIN projects p ON p.id = t.project_id WHERE t.token = $1
"""
# One round trip: count the request if the token may make it, and say why not when it may not.
COUNT_LIMITED_SQL = """
WITH counted AS (
    UPDATE tokens SET request_count = request_count + 1, last_used_at = now()
    WHERE id = $1::uuid AND is_active AND (max_requests IS NULL OR request_count < max_requests)
      AND EXISTS (SELECT 1 FROM projects p WHERE p.id = tokens.project_id AND p.is_active)
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM counted) AS counted, t.is_active AND p.is_active AS active
FROM tokens t JOIN projects p ON p.id = t.project_id WHERE t.id = $1::uuid
"""
FLUSH_SQL = """
UPDATE tokens t SET request_count = t.request_count + v.n, cache_hit_count = t.cache_hit_count + v.h,
       last_used_at = now()
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS v(id, n, h) WHERE t.id = v.id
"""


class TokenStoreUnavailable(Exception):
    """The database could not be read and no fresh cached answer exists."""


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    project_id: str
    expires_at: float | None
    active: bool
    max_requests: int | None
    upstream_key: str


@dataclass(frozen=True)
class _Entry:
    record: TokenRecord | None
    fetched_at: float


class TokenValidator:
    def __init__(self, pool: asyncpg.Pool, box: KeyBox, ttl: float) -> None:
        self._pool = pool
        self._box = box
        self._ttl = ttl
        self._cache: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Future[TokenRecord | None]] = {}
        self._uses: defaultdict[str, int] = defaultdict(int)
        self._hits: defaultdict[str, int] = defaultdict(int)

    async def lookup(self, token_hash: str) -> TokenRecord | None:
        """The token's record (None: no such token). Raises TokenStoreUnavailable."""
        entry = self._cache.get(token_hash)
        if entry is not None and time.monotonic() - entry.fetched_at < self._ttl:
            return entry.record
        pending = self._inflight.get(token_hash)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[TokenRecord | None] = asyncio.get_running_loop().create_future()
        self._inflight[token_hash] = future
        try:
            record = await self._fetch(token_hash)
        except BaseException as exc:
            future.set_exception(TokenStoreUnavailable(str(exc)))
            future.exception()  # mark retrieved: waiters may be none
            raise TokenStoreUnavailable(str(exc)) from exc
        finally:
            del self._inflight[token_hash]
        future.set_result(record)
        if len(self._cache) >= MAX_CACHED:
            self._cache.pop(next(iter(self._cache)))
        self._cache[token_hash] = _Entry(record, time.monotonic())
        return record

    async def _fetch(self, token_hash: str) -> TokenRecord | None:
        try:
            row = await self._pool.fetchrow(LOOKUP_SQL, token_hash, timeout=2.0)
        except DB_ERRORS as exc:
            raise TokenStoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if row is None:
            return None
        try:
            upstream_key = self._box.decrypt(row["api_key"])
        except DecryptionError:
            log.error(
                "project %s: its upstream API key does not decrypt with ENCRYPTION_KEY", row["project_id"]
            )
            upstream_key = ""
        return TokenRecord(
            token_id=row["id"],
            project_id=row["project_id"],
            expires_at=float(row["expires_at"]) if row["expires_at"] is not None else None,
            active=bool(row["active"]),
            max_requests=int(row["max_requests"]) if row["max_requests"] else None,
            upstream_key=upstream_key,
        )

    def forget_all(self) -> None:
        """Called by this replica's management API after any change to projects or tokens."""
        self._cache.clear()

    async def count_use(self, record: TokenRecord) -> Literal["counted", "exhausted", "revoked"]:
        """Count one request, unless the token has used up max_requests or was revoked since it was
        cached (a limited token is checked in the database on every request anyway)."""
        if record.max_requests is None:
            self._uses[record.token_id] += 1
            return "counted"
        try:
            row = await self._pool.fetchrow(COUNT_LIMITED_SQL, record.token_id, timeout=2.0)
        except DB_ERRORS as exc:
            raise TokenStoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if row is None or not row["active"]:
            return "revoked"  # deleted or deactivated (the token or its project)
        return "counted" if row["counted"] else "exhausted"

    def count_cache_hit(self, record: TokenRecord) -> None:
        self._hits[record.token_id] += 1

    async def flush_counts(self) -> None:
        if not self._uses and not self._hits:
            return
        uses, hits = self._uses, self._hits
        self._uses, self._hits = defaultdict(int), defaultdict(int)
        ids = list(uses.keys() | hits.keys())
        try:
            await self._pool.execute(
                FLUSH_SQL, ids, [uses.get(i, 0) for i in ids], [hits.get(i, 0) for i in ids]
            )
        except DB_ERRORS as exc:
            log.warning("token usage counters not saved yet (%s); retrying", exc)
            for i, n in uses.items():
                self._uses[i] += n
            for i, n in hits.items():
                self._hits[i] += n

    async def flush_forever(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.flush_counts()
