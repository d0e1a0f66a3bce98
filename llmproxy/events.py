"""The audit event bus, publisher side: a bounded in-process buffer drained into a Redis Stream.

Requests only append to the buffer (never await Redis). A background task XADDs batches in one
pipeline, retrying while Redis is down. Published events stay in a replay window (EVENT_REPLAY_WINDOW
seconds); when Redis comes back empty (a new run_id, or the stream gone) the window is published again:
the dispatcher is idempotent on the event id, so duplicates cost nothing and nothing is lost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger("llmproxy.events")

# One round trip and one reply per batch (N pipelined XADDs cost N command encodings and N replies).
XADD_BATCH = """
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'data', ARGV[i])
end
return #ARGV - 1
"""
LINGER = 0.01  # seconds the drain waits for a batch to fill (off the request path: fewer, larger XADD calls)


def new_event(action: str, outcome: str, **fields: Any) -> dict[str, Any]:
    """An audit event as the dispatcher stores it (columns of audit_events; extra data in metadata)."""
    return {
        "id": str(uuid.uuid4()),
        "timestamp": time.time(),
        "action": action,
        "outcome": outcome,
        **fields,
    }


@dataclass
class PublisherStats:
    published: int = 0
    republished: int = 0
    dropped: int = 0
    redis_errors: int = 0
    redis_resets: int = 0
    last_error: str | None = None


@dataclass
class EventPublisher:
    client: redis.Redis
    stream_key: str
    max_len: int
    buffer_size: int
    batch_size: int
    replay_window: float
    monitor_interval: float
    stats: PublisherStats = field(default_factory=PublisherStats)

    def __post_init__(self) -> None:
        self._buffer: collections.deque[bytes] = collections.deque()
        self._wakeup = asyncio.Event()
        # One compressed block per published batch: thousands of retained ~600-byte objects fragment the
        # heap (RSS grew ~8 KB per retained event in a load test); a block per batch does not.
        self._replay: collections.deque[tuple[float, bytes]] = collections.deque()
        self._replay_needed = False
        self._run_id: str | None = None
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._script = self.client.register_script(XADD_BATCH)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def publish(self, event: dict[str, Any]) -> None:
        """Queue one event; never blocks. A full buffer drops (and counts) the event."""
        if len(self._buffer) >= self.buffer_size:
            self.stats.dropped += 1
            return
        self._buffer.append(orjson.dumps(event))
        if not self._wakeup.is_set():
            self._wakeup.set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._drain_forever(), name="event-drain"),
            asyncio.create_task(self._monitor_forever(), name="event-monitor"),
        ]

    async def close(self, timeout: float) -> None:
        """Flush the buffer (up to `timeout` seconds), then stop; what is left is counted as dropped."""
        self._closing = True
        self._wakeup.set()
        drain = self._tasks[0] if self._tasks else None
        if drain is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(drain), timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._buffer:
            self.stats.dropped += len(self._buffer)
            log.error("event bus: %d events not flushed at shutdown (Redis unreachable)", len(self._buffer))
            self._buffer.clear()

    async def _drain_forever(self) -> None:
        backoff = 0.05
        while True:
            if not self._buffer and not self._replay_needed:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if len(self._buffer) < self.batch_size and not self._closing:
                await asyncio.sleep(LINGER)
            try:
                if self._replay_needed:
                    await self._republish()
                if self._buffer:
                    await self._send_batch()
                backoff = 0.05
            except (RedisError, OSError) as exc:
                self._note_error(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    async def _send_batch(self) -> None:
        batch = list(itertools.islice(self._buffer, self.batch_size))
        await self._xadd(batch)
        # Only now is the batch delivered: drop it from the buffer and keep it for replay.
        for _ in batch:
            self._buffer.popleft()
        now = time.monotonic()
        if self.replay_window > 0:
            # orjson output holds no raw newline; JSON events compress ~5x at level 1 for ~2 us each.
            self._replay.append((now, zlib.compress(b"\n".join(batch), 1)))
        self.stats.published += len(batch)
        self._expire_replay(now)

    async def _xadd(self, batch: list[bytes]) -> None:
        await self._script(keys=[self.stream_key], args=[self.max_len, *batch])

    async def _republish(self) -> None:
        self._expire_replay(time.monotonic())
        window = [data for _, block in self._replay for data in zlib.decompress(block).split(b"\n")]
        for start in range(0, len(window), self.batch_size):
            await self._xadd(window[start : start + self.batch_size])
        self._replay_needed = False
        self.stats.republished += len(window)
        log.warning("event bus: Redis came back empty; republished %d recent events", len(window))

    def _expire_replay(self, now: float) -> None:
        horizon = now - self.replay_window
        while self._replay and self._replay[0][0] < horizon:
            self._replay.popleft()

    def _note_error(self, exc: BaseException) -> None:
        self.stats.redis_errors += 1
        message = f"{type(exc).__name__}: {exc}"
        if message != self.stats.last_error:
            log.warning("event bus: Redis unavailable, events buffered (%s)", message)
        self.stats.last_error = message

    async def _monitor_forever(self) -> None:
        """Detect a Redis that restarted empty (new run_id, or our stream vanished)."""
        while True:
            await asyncio.sleep(self.monitor_interval)
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    pipe.info("server")
                    pipe.exists(self.stream_key)
                    info, exists = await pipe.execute()
            except (RedisError, OSError) as exc:
                self._note_error(exc)
                continue
            run_id = str(info.get("run_id"))
            reset = (self._run_id is not None and run_id != self._run_id) or (
                not exists and bool(self._replay)
            )
            self._run_id = run_id
            if reset:
                self.stats.redis_resets += 1
                self._replay_needed = True
                self._wakeup.set()
            self.stats.last_error = None
