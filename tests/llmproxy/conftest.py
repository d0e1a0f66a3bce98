"""Real processes for the proxy's tests: the proxy, dispatcher and mock upstream as subprocesses on free
ports, a database per test module on the session's Postgres, private redis-servers for restart tests, and
a cuttable TCP pass-through for outage tests."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import requests

from tests.ports import free_port

MANAGEMENT_TOKEN = "test-management-token"
ENCRYPTION_KEY = "test-encryption-key-0123456789abcdef"
UPSTREAM_KEY = "sk-upstream-project-key"
CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def wait_until(predicate: Any, timeout: float = 20.0, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except (OSError, requests.RequestException):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def chunk_arrivals(send: Callable[[], requests.Response]) -> list[float]:
    """Seconds from sending a request (`send`, with stream=True) to the arrival of each piece of its body,
    read as it comes: a stream generated token by token arrives in many pieces spread over time."""
    began = time.monotonic()
    response = send()
    assert response.status_code == 200, response.text
    return [time.monotonic() - began for piece in response.iter_content(chunk_size=None) if piece]


def run_sql(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


@dataclass
class Process:
    """A child process with its output in a log file (shown when a test fails to start it)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send(self, sig: int) -> None:
        assert self.popen is not None
        self.popen.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.popen is None:
            return 0
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


class ProcessFactory:
    """Starts processes for one test (or module) and stops every one it started."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Process] = []

    def process(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        process = Process(name, argv, env, self.workdir / f"{name}-{len(self.started)}.log")
        process.start()
        self.started.append(process)
        return process

    def close(self) -> None:
        """SIGTERM everything at once (each drains in parallel), then reap."""
        for process in self.started:
            if process.alive():
                process.send(signal.SIGTERM)
        for process in reversed(self.started):
            process.stop(timeout=15)


@dataclass
class Proxy:
    process: Process
    port: int
    dsn: str
    env: dict[str, str]
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {MANAGEMENT_TOKEN}", **kwargs.pop("headers", {})}
        return self.session.request(method, self.url + path, json=body, headers=headers, timeout=10, **kwargs)

    def create_project(self, name: str | None = None, api_key: str = UPSTREAM_KEY) -> str:
        response = self.manage(
            "POST", "/manage/projects", {"name": name or f"p-{uuid.uuid4().hex[:12]}", "api_key": api_key}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def create_token(
        self, project_id: str, duration_minutes: int = 60, max_requests: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"project_id": project_id, "duration_minutes": duration_minutes}
        if max_requests is not None:
            body["max_requests"] = max_requests
        response = self.manage("POST", "/manage/tokens", body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def token(self, max_requests: int | None = None) -> str:
        return str(self.create_token(self.create_project(), max_requests=max_requests)["token"])

    def call(
        self, token: str | None, path: str = "/v1/chat/completions", body: Any = CHAT, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        method = kwargs.pop("method", "POST" if body is not None else "GET")
        return self.session.request(method, self.url + path, json=body, headers=headers, timeout=30, **kwargs)


def database_for(admin_dsn: str, label: str) -> str:
    """A fresh database on the shared server; returns its DSN."""
    name = f"llmproxy_{re.sub(r'[^a-z0-9]', '_', label.lower())[:30]}_{uuid.uuid4().hex[:8]}"
    run_sql(admin_dsn, f'CREATE DATABASE "{name}"')
    return urlsplit(admin_dsn)._replace(path=f"/{name}").geturl()


def proxy_env(dsn: str, redis_url: str, upstream_url: str, port: int, **overrides: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "MANAGEMENT_TOKEN": MANAGEMENT_TOKEN,
        "DATABASE_URL": dsn,
        "REDIS_CACHE_URL": redis_url,
        "REDIS_EVENT_URL": redis_url,
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "OPENAI_API_URL": upstream_url,
        "LISTEN_ADDR": f"127.0.0.1:{port}",
        "LOG_FORMAT": "text",
        "REDIS_STREAM_KEY": f"test-events-{tag}",
        "REDIS_CACHE_KEY_PREFIX": f"test-cache-{tag}:",
        "TOKEN_CACHE_TTL": "0.5",
        "DRAIN_DELAY": "0.3",
        "EVENT_MONITOR_INTERVAL": "0.2",
    }
    env.update(overrides)
    return env


@dataclass
class Stack:
    """Starts proxies and dispatchers against one database and one upstream."""

    factory: ProcessFactory
    dsn: str
    redis_url: str
    upstream_url: str

    def proxy(self, **overrides: str) -> Proxy:
        port = free_port()
        env = proxy_env(self.dsn, self.redis_url, self.upstream_url, port, **overrides)
        process = self.factory.process("proxy", [sys.executable, "-m", "llmproxy", "proxy"], env)
        proxy = Proxy(process, port, self.dsn, env)

        def live() -> bool:
            if not process.alive():
                raise AssertionError(f"proxy exited at start-up:\n{process.log()}")
            return requests.get(proxy.url + "/live", timeout=1).status_code == 200

        wait_until(live, timeout=60, what="proxy /live")
        return proxy

    def dispatcher(self, env: dict[str, str], **overrides: str) -> Process:
        dispatcher_env = {
            **env,
            "DISPATCHER_CONSUMER_NAME": overrides.pop("DISPATCHER_CONSUMER_NAME", "test-dispatcher"),
            "DISPATCHER_BLOCK_MS": "200",
            **overrides,
        }
        return self.factory.process(
            "dispatcher", [sys.executable, "-m", "llmproxy", "dispatcher"], dispatcher_env
        )


def start_mock_upstream(factory: ProcessFactory) -> str:
    port = free_port()
    process = factory.process(
        "mock-upstream",
        [sys.executable, "-m", "llmproxy", "mock-upstream", "--port", str(port)],
        dict(os.environ),
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(url + "/mock/stats", timeout=1).ok, timeout=60, what="mock upstream")
    assert process.alive()
    return url + "/v1"


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="llmproxy-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def module_factory(workdir: Path) -> Iterator[ProcessFactory]:
    factory = ProcessFactory(workdir)
    yield factory
    factory.close()


@pytest.fixture
def factory(workdir: Path) -> Iterator[ProcessFactory]:
    factory = ProcessFactory(workdir)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def upstream_url(module_factory: ProcessFactory) -> str:
    return start_mock_upstream(module_factory)


@pytest.fixture(scope="module")
def module_dsn(postgres_dsn: str, request: pytest.FixtureRequest) -> str:
    return database_for(postgres_dsn, request.module.__name__.rpartition(".")[2])


@pytest.fixture(scope="module")
def stack(module_factory: ProcessFactory, module_dsn: str, redis_url: str, upstream_url: str) -> Stack:
    return Stack(module_factory, module_dsn, redis_url, upstream_url)


@pytest.fixture(scope="module")
def proxy(stack: Stack) -> Proxy:
    """One proxy shared by a test module (tests create their own projects and tokens)."""
    return stack.proxy()


class RedisServer:
    """A private redis-server (no persistence) that a test may kill and restart empty, as a reboot does."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.popen = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def ready() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_until(ready, timeout=10, what="redis-server")

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def restart_empty(self) -> None:
        self.kill()
        self.start()


@pytest.fixture
def private_redis(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    server.start()
    yield server
    server.kill()


class PassThrough:
    """A TCP pass-through run in a thread; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.open = True
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.base_events.Server | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._call(self._listen())

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    async def _cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        self._call(self._cut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def dsn_port(dsn: str) -> int:
    match = re.search(r"@[^:/]+:(\d+)/", dsn)
    assert match, dsn
    return int(match.group(1))


def dsn_via(dsn: str, port: int) -> str:
    return re.sub(r"(@[^:/]+:)\d+/", f"\\g<1>{port}/", dsn, count=1)


def audit_rows(dsn: str, request_ids: list[str]) -> dict[str, int]:
    rows = run_sql(
        dsn,
        "SELECT request_id, count(*) AS n FROM audit_events WHERE request_id = ANY($1::text[]) GROUP BY request_id",
        request_ids,
    )
    return {r["request_id"]: r["n"] for r in rows}


def wait_for_audit(dsn: str, request_ids: list[str], timeout: float = 30) -> dict[str, int]:
    """Wait until every request id has a row; returns the row count per id."""

    def complete() -> dict[str, int] | None:
        counts = audit_rows(dsn, request_ids)
        return counts if len(counts) == len(set(request_ids)) else None

    wait_until(complete, timeout=timeout, interval=0.2, what="audit rows")
    time.sleep(0.5)  # let late duplicates (if any) land before counting
    return audit_rows(dsn, request_ids)


def metrics(proxy: Proxy) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(requests.get(proxy.url + "/metrics", timeout=5).text)
    return result
