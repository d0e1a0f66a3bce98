"""Shared by the emulator, realizer and CLI tests: the emulator as the supervisor runs it (`python -m devenv.emulator`
in a child process on a free port), or in this process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest

from devenv.targets.local import endpoint_for
from tests.ports import free_port


def start_emulator(env_overrides: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, **env_overrides}
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devenv.emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--region",
            "us-east-1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"emulator exited {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            with urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1) as response:
                if response.status == 200:
                    return process, endpoint_for(port)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("emulator did not become ready in 60 s")


def stop_emulator(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    return process.wait(timeout=10)


@pytest.fixture(scope="session")
def emulator(postgres_dsn: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint (http://localhost:PORT) of an emulator wired to the session's Postgres and Redis."""
    redis_parts = urlsplit(redis_url)
    process, endpoint = start_emulator(
        {
            "DEVENV_POSTGRES_ADMIN_URL": postgres_dsn,
            "DEVENV_REDIS_ENDPOINT": f"{redis_parts.hostname}:{redis_parts.port}",
            "DEVENV_CLOUD_STRICT": "1",
        },
        tmp_path_factory.mktemp("emulator") / "emulator.log",
    )
    yield endpoint
    stop_emulator(process)


TIME_SCALE = 60  # the scaled emulator's: an AWS minute lasts a second


@pytest.fixture(scope="session")
def scaled_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An emulator (no Postgres or Redis behind it) whose alarm periods and cooldowns run TIME_SCALE times
    faster, for alarms and target tracking."""
    process, endpoint = start_emulator(
        {"DEVENV_TIME_SCALE": str(TIME_SCALE)}, tmp_path_factory.mktemp("scaled") / "emulator.log"
    )
    yield endpoint
    stop_emulator(process)


@pytest.fixture(scope="module")
def inprocess_emulator() -> Iterator[str]:
    """moto with devenv's ECS scheduler and control API, served from this process on a free port.

    moto's backends are global to the process: the state is reset for each module that uses this.
    """
    import threading
    import urllib.request

    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    from devenv.emulator import control, moto_patches

    moto_patches.install()
    port = free_port()
    app = control.wrap(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
    yield url
    server.shutdown()
