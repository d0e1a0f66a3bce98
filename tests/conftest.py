"""Shared fixtures: real Postgres 18 and Redis on free ports, started by devenv's own supervisor; a real
proxy and mock upstream on them (`local_target`); the whole local stack, one for the session (`stack`)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from devenv.config import Settings
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import Supervisor
from devenv.services import postgres, redis
from tests.ports import free_port

if TYPE_CHECKING:
    from tests.local_stack import Stack  # imports this module (reachable_tmpdir)

MANAGEMENT_TOKEN = "loadtest-management-token"  # of `local_target`'s proxy
pytest_plugins = ["tests.docker_engine"]  # the `docker_engine` and `docker_images` fixtures

# pytest-xdist's workers get COLUMNS=80 from their controller; devenv lays out output written to a pipe
# at its own width unless COLUMNS says otherwise, and the tests read it as a pipe would
for _variable in ("COLUMNS", "LINES"):
    os.environ.pop(_variable, None)


def reachable_tmpdir(prefix: str) -> Path:
    """A temp folder the non-root Postgres user can reach (pytest's own tmp root is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


HEAVY_SPAN = 0.4  # the share of the run over which the modules holding a slow test are spread


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules holding a `slow` test first, the most slow tests first, spread over the first 40% of the run
    between the others, which keep the order pytest-randomly drew. With pytest-xdist's `--dist loadfile
    --no-loadscope-reorder` (noxfile.py) a worker takes the next file as it frees up: the longest files
    start early, beside quick ones (a slow module mostly waits on its stack, a quick one computes), and the
    run ends on quick files, with no worker finishing a multi-minute module alone (the failover experiments,
    ~4 min, drawn at 3/4 of the run, once ended it 2.5 min after the other two workers)."""
    modules = list(dict.fromkeys(item.path for item in items))
    slow = collections.Counter(item.path for item in items if item.get_closest_marker("slow"))
    heavy = sorted((path for path in modules if path in slow), key=lambda path: -slow[path])
    light = [path for path in modules if path not in slow]
    place = {path: HEAVY_SPAN * index / len(heavy) for index, path in enumerate(heavy)}
    place.update({path: index / len(light) for index, path in enumerate(light)})
    items.sort(key=lambda item: place[item.path])


@pytest.fixture(scope="session")
def infra_state_dir() -> Iterator[StateDir]:
    root = reachable_tmpdir("devenv-test-infra-")
    yield StateDir(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def infra(infra_state_dir: StateDir) -> Iterator[Supervisor]:
    """A supervisor running Postgres and Redis for the whole session."""
    with postgres_and_redis(infra_state_dir) as supervisor:
        yield supervisor


@contextlib.contextmanager
def postgres_and_redis(state: StateDir) -> Iterator[Supervisor]:
    """A supervisor running Postgres and Redis on free ports (their URLs: `spec.url` of each service)."""
    settings = Settings(state_dir=state.root)
    state.ensure()
    supervisor = Supervisor(state, facts={})
    specs = [
        postgres.spec(settings, state, free_port()),
        redis.spec(settings, state, free_port()),
    ]
    try:
        supervisor.start_all(specs)
        stop = threading.Event()
        watcher = threading.Thread(target=supervisor.watch, args=(stop,), daemon=True)
        watcher.start()
        yield supervisor
        stop.set()
        watcher.join()
    finally:
        supervisor.stop_all()


@pytest.fixture(scope="session")
def postgres_dsn(infra: Supervisor) -> str:
    """Superuser DSN of a real Postgres 18 (password auth over TCP); create databases freely."""
    url = infra.services["postgres"].spec.url
    assert url is not None
    return url


@pytest.fixture(scope="session")
def redis_url(infra: Supervisor) -> str:
    """URL of a real redis-server with no persistence, shared by the session (use distinct keys/db)."""
    url = infra.services["redis"].spec.url
    assert url is not None
    return url


@pytest.fixture(autouse=True, scope="session")
def _quiet_node_eol_banner() -> None:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


CDK_CACHE_KEY = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """One cloud-assembly cache for every `devenv` the tests start, made before pytest-xdist starts its
    workers (they inherit it): the app is synthesized once per distinct props/context in the whole run, as
    on a developer's machine, instead of once per private state dir or worker (devenv.targets.cdk locks a
    synth, so two workers needing the same assembly wait for one)."""
    if hasattr(config, "workerinput") or "DEVENV_CDK_CACHE_DIR" in os.environ:
        return
    cache = reachable_tmpdir("devenv-test-cdk-cache-")
    os.environ["DEVENV_CDK_CACHE_DIR"] = str(cache)
    config.stash[CDK_CACHE_KEY] = cache


def pytest_unconfigure(config: pytest.Config) -> None:
    cache = config.stash.get(CDK_CACHE_KEY, None)
    if cache is not None:
        del os.environ["DEVENV_CDK_CACHE_DIR"]
        shutil.rmtree(cache, ignore_errors=True)


@dataclass
class ProxyTarget:
    """A real proxy (and its mock upstream) on free ports: `MANAGEMENT_TOKEN` opens its management API."""

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
) -> Iterator[ProxyTarget]:
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
        yield ProxyTarget(proxy_url, mock_url, logs)
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


SHARED_STACK_TIME_SCALE = (
    "30"  # the metrics collector samples every 0.5 s (tests/devenv/targets/test_metrics_stack.py)
)


@pytest.fixture(scope="session")
def shared_stack() -> Iterator[Stack]:
    """The one whole local stack of the session (started by the first test that asks for `stack`). Its
    tasks run a copy of llmproxy/ (`llmproxy_dir`), which the live-reload tests edit and restore."""
    from tests.local_stack import running_stack

    copy = reachable_tmpdir("devenv-test-llmproxy-") / "llmproxy"
    shutil.copytree(
        Path(__file__).resolve().parents[1] / "llmproxy", copy, ignore=shutil.ignore_patterns("__pycache__")
    )
    settings = {"DEVENV_TIME_SCALE": SHARED_STACK_TIME_SCALE, "DEVENV_LLMPROXY_DIR": str(copy)}
    try:
        with running_stack(settings) as running:
            yield running
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


@pytest.fixture
def stack(shared_stack: Stack) -> Stack:
    """The session's stack in its steady state: whatever ran before, this test starts from the same place."""
    shared_stack.await_steady()
    return shared_stack
