"""The background load of an experiment: a bounded constant-rate stream of /v1 requests, each tagged with its
own `X-Request-ID` and recorded (times, status, latency, whether the proxy answered with that id), so the
data-loss check knows every request that got a response. Runs on its own asyncio loop in a thread.

Bounded twice: `rate * duration_s` requests at most, `concurrency` in flight, each with a timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

CHAT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "failover experiment"}]}


@dataclass
class Request:
    seq: int
    request_id: str
    start: float  # seconds since the experiment's t0
    end: float
    status: int  # 0: no HTTP response (connection refused/reset, timeout)
    latency_ms: float
    answered: bool  # the proxy itself answered: its response carries our X-Request-ID
    error: str | None = None

    @property
    def failed(self) -> bool:
        return not 200 <= self.status < 300

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadSpec:
    url: str
    token: str
    rate: float
    duration_s: float
    concurrency: int
    timeout_s: float
    path: str = "/v1/chat/completions"
    keep_alive: bool = True


class BackgroundLoad:
    """Start with `start(t0)`; `stop()` ends it early; `join()` waits for the last answers."""

    def __init__(self, spec: LoadSpec, run_tag: str) -> None:
        self.spec = spec
        self.run_tag = run_tag
        self.requests: list[Request] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self.error: str | None = None

    def start(self, t0: float) -> None:
        self._t0 = t0
        self._thread = threading.Thread(target=self._run, name="failover-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(self.spec.duration_s + self.spec.timeout_s + 30)

    def snapshot(self) -> list[Request]:
        return list(self.requests)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # recorded: the runner reports it as a set-up error
            self.error = f"{type(exc).__name__}: {exc}"

    async def _main(self) -> None:
        spec = self.spec
        total = int(spec.rate * spec.duration_s)
        slots = asyncio.Semaphore(spec.concurrency)
        timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
        connector = aiohttp.TCPConnector(limit=spec.concurrency, force_close=not spec.keep_alive)
        started = time.monotonic()
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            pending: set[asyncio.Task[None]] = set()
            for seq in range(total):
                due = started + seq / spec.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self._stop.is_set():
                    break
                await slots.acquire()
                task = asyncio.create_task(self._one(session, seq, slots))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*pending)

    async def _one(self, session: aiohttp.ClientSession, seq: int, slots: asyncio.Semaphore) -> None:
        spec = self.spec
        request_id = f"fo-{self.run_tag}-{seq:06d}"
        headers = {"Authorization": f"Bearer {spec.token}", "X-Request-ID": request_id}
        begin = time.monotonic()
        status, answered, error = 0, False, None
        try:
            async with session.post(spec.url + spec.path, json=CHAT_BODY, headers=headers) as response:
                await response.read()
                status = response.status
                answered = response.headers.get("X-Request-ID") == request_id
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            slots.release()
        end = time.monotonic()
        self.requests.append(
            Request(
                seq,
                request_id,
                begin - self._t0,
                end - self._t0,
                status,
                round((end - begin) * 1000, 2),
                answered,
                error,
            )
        )


@dataclass
class HealthSample:
    t: float
    ok: bool
    status: int
    body_status: str | None


class HealthProbe:
    """Polls the health path every `interval_s` until stopped; each sample says whether it held."""

    def __init__(
        self, url: str, statuses: list[int], body_statuses: list[str], interval_s: float, t0: float
    ) -> None:
        self.url = url
        self.statuses = statuses
        self.body_statuses = body_statuses
        self.interval_s = interval_s
        self.samples: list[HealthSample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = t0

    def check(self) -> HealthSample:
        import json
        import urllib.error
        import urllib.request

        status, body_status = 0, None
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                status, raw = response.status, response.read(4000)
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read(4000)
        except OSError:
            raw = b""
        try:
            parsed = json.loads(raw) if raw else None
            body_status = str(parsed.get("status")) if isinstance(parsed, dict) else None
        except ValueError:
            body_status = None
        ok = status in self.statuses and (not self.body_statuses or body_status in self.body_statuses)
        return HealthSample(round(time.monotonic() - self.t0, 3), ok, status, body_status)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="failover-health", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.check())
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def new_run_tag() -> str:
    return uuid.uuid4().hex[:10]
