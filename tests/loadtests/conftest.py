"""A real local target for the load tests: mock upstream + proxy subprocesses on free ports, on a fresh
database of the session's Postgres and the session's Redis; and `devenv` run as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from devenv.runtime.ports import free_port

LOADTESTS_DIR = Path(__file__).resolve().parents[2] / "loadtests"
MANAGEMENT_TOKEN = "loadtest-management-token"
UPSTREAM_KEY = "sk-loadtest-upstream-key"  # the locustfile's default project key


@dataclass
class Target:
    proxy_url: str
    mock_url: str
    logs: Path

    def mock_stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.mock_url + "/mock/stats", timeout=5) as response:
            return dict(json.loads(response.read()))


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited at start-up:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout_s}s:\n{log.read_text(errors='replace')[-3000:]}")


def _create_database(admin_dsn: str) -> str:
    name = f"loadtest_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return urlsplit(admin_dsn)._replace(path=f"/{name}").geturl()


@pytest.fixture(scope="session")
def local_target(
    postgres_dsn: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    logs = tmp_path_factory.mktemp("loadtest-target")
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, argv: list[str], env: dict[str, str], health: str) -> None:
        log = logs / f"{name}.log"
        with open(log, "wb") as handle:
            process = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT)
        processes.append(process)
        _wait_http(health, process, log)

    try:
        mock_port, proxy_port = free_port(), free_port()
        mock_url, proxy_url = f"http://127.0.0.1:{mock_port}", f"http://127.0.0.1:{proxy_port}"
        start(
            "mock-upstream",
            [sys.executable, "-m", "llmproxy", "mock-upstream", "--port", str(mock_port)],
            dict(os.environ),
            mock_url + "/health",
        )
        tag = uuid.uuid4().hex[:8]
        proxy_env = {
            **os.environ,
            "MANAGEMENT_TOKEN": MANAGEMENT_TOKEN,
            "DATABASE_URL": _create_database(postgres_dsn),
            "REDIS_CACHE_URL": redis_url,
            "REDIS_EVENT_URL": redis_url,
            "ENCRYPTION_KEY": "loadtest-encryption-key-0123456789abcdef",
            "OPENAI_API_URL": mock_url,
            "LISTEN_ADDR": f"127.0.0.1:{proxy_port}",
            "LOG_LEVEL": "warning",
            "REDIS_STREAM_KEY": f"loadtest-events-{tag}",
            "REDIS_CACHE_KEY_PREFIX": f"loadtest-cache-{tag}:",
        }
        start("proxy", [sys.executable, "-m", "llmproxy", "proxy"], proxy_env, proxy_url + "/health")
        yield Target(proxy_url, mock_url, logs)
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Devenv:
    state_dir: Path
    env: dict[str, str]

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "devenv", *args]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=timeout, env=self.env, check=False
        )


@pytest.fixture
def devenv(tmp_path: Path) -> Devenv:
    """`devenv` with a private state dir and no target or token from the caller's environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MANAGEMENT_TOKEN", "DEVENV_TARGET_URL", "LOADTEST_API_KEY")
    }
    env["DEVENV_STATE_DIR"] = str(tmp_path / "state")
    env["COLUMNS"] = "160"
    return Devenv(tmp_path / "state", env)
