"""`python -m llmproxy dispatcher`: the event bus consumer that writes audit events to Postgres.

At-least-once delivery, exactly-once rows: messages are read through a consumer group, inserted with
ON CONFLICT (id) DO NOTHING, and ACKed only after the insert committed. On start the consumer first
re-reads its own pending messages; a timer claims (XAUTOCLAIM) those of consumers that died; NOGROUP
(Redis restarted empty) re-creates the group from the stream's start. SIGTERM finishes the batch in hand.
Optionally each newly inserted event is also appended to a JSONL file (DISPATCHER_JSONL_PATH).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
import time
import uuid
from typing import Any

import asyncpg
import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError, ResponseError

from llmproxy.db import DatabaseUnavailable, connect_pool, migrate
from llmproxy.process import start
from llmproxy.redis_conn import make_redis
from llmproxy.settings import DispatcherSettings, load_dispatcher_settings

log = logging.getLogger("llmproxy.dispatcher")

COLUMNS = (
    ("id", "uuid"),
    ("timestamp", "float8"),
    ("action", "text"),
    ("actor", "text"),
    ("project_id", "uuid"),
    ("request_id", "text"),
    ("correlation_id", "text"),
    ("client_ip", "text"),
    ("method", "text"),
    ("path", "text"),
    ("user_agent", "text"),
    ("outcome", "text"),
    ("reason", "text"),
    ("token_id", "uuid"),
    ("metadata", "jsonb"),
)
TEXT_COLUMNS = [name for name, kind in COLUMNS if kind == "text"]
INSERT_SQL = f"""
INSERT INTO audit_events ({", ".join(name for name, _ in COLUMNS)})
SELECT {", ".join("to_timestamp(e.timestamp)" if n == "timestamp" else f"e.{n}" for n, _ in COLUMNS)}
FROM jsonb_to_recordset($1::jsonb) AS e({", ".join(f"{n} {k}" for n, k in COLUMNS)})
ON CONFLICT (id) DO NOTHING
RETURNING id::text
"""
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError)
Message = tuple[bytes, dict[bytes, bytes] | None]


class Stopping(Exception):
    """SIGTERM arrived while Postgres was down: leave the batch unACKed and exit."""


def _clean_text(value: Any) -> str | None:
    """Postgres text cannot hold NUL; a request path may (percent-decoded)."""
    if value is None:
        return None
    return str(value).replace("\x00", "\ufffd")


def decode_event(fields: dict[bytes, bytes] | None) -> dict[str, Any] | None:
    """An audit_events row from a stream entry, or None for an entry that can never be stored."""
    if not fields or b"data" not in fields:
        return None
    try:
        event = orjson.loads(fields[b"data"])
        row: dict[str, Any] = {
            "id": str(uuid.UUID(str(event["id"]))),
            "timestamp": float(event["timestamp"]),
            "metadata": event.get("metadata") if isinstance(event.get("metadata"), dict) else {},
        }
        for column in ("project_id", "token_id"):
            row[column] = str(uuid.UUID(str(event[column]))) if event.get(column) else None
        for column in TEXT_COLUMNS:
            row[column] = _clean_text(event.get(column))
    except (ValueError, KeyError, TypeError):
        return None
    if not row["action"] or not row["outcome"]:
        return None
    row["metadata"] = orjson.loads(orjson.dumps(row["metadata"]).replace(b"\\u0000", b"\\ufffd"))
    return row


@dataclasses.dataclass
class Dispatcher:
    settings: DispatcherSettings
    pool: asyncpg.Pool
    client: redis.Redis
    stop: asyncio.Event
    written: int = 0
    duplicates: int = 0

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(
                self.settings.stream_key, self.settings.consumer_group, id="0", mkstream=True
            )
            log.info(
                "created consumer group %s on %s", self.settings.consumer_group, self.settings.stream_key
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        backoff = 0.1
        own_pending = True  # first re-read what this consumer was given before a crash
        next_claim = 0.0
        while not self.stop.is_set():
            try:
                if time.monotonic() >= next_claim:
                    await self.claim_dead_consumers()
                    next_claim = time.monotonic() + self.settings.claim_interval
                if own_pending:
                    messages = await self.read("0", block=None)
                    own_pending = bool(messages)
                else:
                    messages = await self.read(">", block=self.settings.block_ms)
                if messages:
                    await self.deliver(messages)
                backoff = 0.1
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("consumer group missing (Redis restarted empty?): re-creating it")
                await self.ensure_group()
                own_pending = True
            except (RedisError, OSError) as exc:
                log.warning("Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                await self.pause(backoff)
                backoff = min(backoff * 2, 2.0)

    async def read(self, start: str, block: int | None) -> list[Message]:
        streams: dict[Any, Any] = {self.settings.stream_key: start}
        call = self.client.xreadgroup(
            self.settings.consumer_group,
            self.settings.consumer_name,
            streams,
            count=self.settings.batch_size,
            block=block,
        )
        if block is None:
            response = await call
        else:
            reader = asyncio.ensure_future(call)
            stopper = asyncio.ensure_future(self.stop.wait())
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not reader.done():
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
                return []
            response = reader.result()
        if not response:
            return []
        entries: list[Message] = response[0][1]  # type: ignore[index,assignment]
        return entries

    async def claim_dead_consumers(self) -> None:
        start = "0-0"
        while True:
            result = await self.client.xautoclaim(
                self.settings.stream_key,
                self.settings.consumer_group,
                self.settings.consumer_name,
                self.settings.claim_idle_ms,
                start_id=start,
                count=self.settings.batch_size,
            )
            start, messages = result[0], result[1]
            if messages:
                log.info("claimed %d pending messages of other consumers", len(messages))
                await self.deliver(list(messages))
            if start in (b"0-0", "0-0") or not messages:
                return

    async def deliver(self, messages: list[Message]) -> None:
        """Insert the batch (retrying while Postgres is down), then ACK it."""
        rows = []
        for message_id, fields in messages:
            row = decode_event(fields)
            if row is None:
                log.error("dropping malformed stream entry %r", message_id)
            else:
                rows.append(row)
        unique = list({row["id"]: row for row in rows}.values())
        inserted = await self._insert(unique) if unique else []
        await self.client.xack(
            self.settings.stream_key, self.settings.consumer_group, *[m for m, _ in messages]
        )
        self.written += len(inserted)
        self.duplicates += len(rows) - len(inserted)
        if self.settings.jsonl_path and inserted:
            fresh = set(inserted)
            with open(self.settings.jsonl_path, "ab") as handle:
                for row in unique:
                    if row["id"] in fresh:
                        handle.write(orjson.dumps(row) + b"\n")

    async def _insert(self, rows: list[dict[str, Any]]) -> list[str]:
        backoff = 0.1
        payload = orjson.dumps(rows).decode()
        while True:
            try:
                records = await self.pool.fetch(INSERT_SQL, payload, timeout=30)
                return [r[0] for r in records]
            except DB_ERRORS as exc:
                if self.stop.is_set():
                    raise Stopping from exc  # unACKed: redelivered to the next consumer
                log.warning("Postgres unavailable (%s); batch of %d held, retrying", exc, len(rows))
                await self.pause(backoff)
                backoff = min(backoff * 2, 2.0)

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)


async def serve(settings: DispatcherSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        pool = await connect_pool(settings.database_url, 2, settings.database_connect_timeout)
    except DatabaseUnavailable as exc:
        print(f"llmproxy dispatcher: {exc} (check DATABASE_URL and that Postgres is up)", file=sys.stderr)
        return 1
    await migrate(pool)
    client = make_redis(
        dataclasses.replace(
            settings.event_redis, timeout=settings.event_redis.timeout + settings.block_ms / 1000 + 5
        ),
        max_connections=4,
    )
    dispatcher = Dispatcher(settings=settings, pool=pool, client=client, stop=stop)
    log.info(
        "dispatching %s (group %s, consumer %s)",
        settings.stream_key,
        settings.consumer_group,
        settings.consumer_name,
    )
    try:
        while not stop.is_set():
            try:
                await dispatcher.ensure_group()
                break
            except (RedisError, OSError) as exc:
                log.warning("Redis unavailable (%s); retrying", exc)
                await dispatcher.pause(1.0)
        await dispatcher.run()
    except Stopping:
        log.warning("stopping with a batch unwritten (Postgres down); it stays pending for redelivery")
    finally:
        await client.aclose()
        await pool.close()
    log.info("stopped: %d events written, %d duplicates ignored", dispatcher.written, dispatcher.duplicates)
    return 0


def main(argv: list[str]) -> int:
    return start(
        "dispatcher",
        "Audit event dispatcher: Redis Stream -> Postgres audit_events (configured by environment).",
        argv,
        load_dispatcher_settings,
        lambda settings: asyncio.run(serve(settings)),
    )
