"""Shared fixtures: real Postgres 18 and Redis on free ports, started by devenv's own supervisor."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.config import Settings
from devenv.runtime.ports import free_port
from devenv.runtime.state import StateDir
from devenv.runtime.supervisor import Supervisor
from devenv.services import postgres, redis

pytest_plugins = ["tests.docker_engine"]  # the `docker_engine` and `docker_images` fixtures


def reachable_tmpdir(prefix: str) -> Path:
    """A temp folder the non-root Postgres user can reach (pytest's own tmp root is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def infra_state_dir() -> Iterator[StateDir]:
    root = reachable_tmpdir("devenv-test-infra-")
    yield StateDir(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def infra(infra_state_dir: StateDir) -> Iterator[Supervisor]:
    """A supervisor running Postgres and Redis for the whole session."""
    settings = Settings(state_dir=infra_state_dir.root)
    infra_state_dir.ensure()
    supervisor = Supervisor(infra_state_dir, facts={})
    specs = [
        postgres.spec(settings, infra_state_dir, free_port()),
        redis.spec(settings, infra_state_dir, free_port()),
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


@pytest.fixture(autouse=True, scope="session")
def _shared_cdk_cache() -> Iterator[None]:
    """One cloud-assembly cache for every `devenv` the tests start: the app is synthesized once per
    distinct props/context, as on a developer's machine, instead of once per private state dir."""
    if "DEVENV_CDK_CACHE_DIR" in os.environ:
        yield
        return
    cache = reachable_tmpdir("devenv-test-cdk-cache-")
    os.environ["DEVENV_CDK_CACHE_DIR"] = str(cache)
    yield
    del os.environ["DEVENV_CDK_CACHE_DIR"]
    shutil.rmtree(cache, ignore_errors=True)
