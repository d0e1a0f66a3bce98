"""A real Docker Engine for the tests marked `docker` (`nox -s docker` runs them).

`docker_engine`: the daemon DOCKER_HOST names when it answers, else the engine of scripts/docker-engine.sh
(started for the session when it was not running, and stopped after); the tests skip, with the script's
reason, only where no engine can be started. `docker_images`: everything the Docker path runs, built by
`python -m devenv.services.images build` (air-gapped stand-ins where no registry answers; Docker's cache
makes a second build quick), as the variables selecting them, which the session's environment gets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.runtime import docker_daemon_answers

ROOT = Path(__file__).resolve().parents[1]
ENGINE_SCRIPT = ROOT / "scripts" / "docker-engine.sh"
NO_ENGINE = 3  # the script's exit code where no engine can be started


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The suite's per-test timeout bounds a docker test's body, not its fixtures: on a machine seen for the
    first time, installing the engine and building every image takes longer than it (and `up --runtime
    docker` may); each of those fixtures is bounded by its own subprocess timeout instead."""
    for item in items:
        if item.get_closest_marker("docker") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(float(item.config.getini("timeout")), func_only=True))


def engine_script(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ENGINE_SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[str]:
    """The DOCKER_HOST of a running Docker Engine (set in this session's environment)."""
    if os.environ.get("DOCKER_HOST") and docker_daemon_answers():
        yield os.environ["DOCKER_HOST"]
        return
    was_running = engine_script("status").returncode == 0
    started = engine_script("start")
    if started.returncode == NO_ENGINE:
        pytest.skip(f"no Docker engine can be started here: {started.stderr.strip()}")
    assert started.returncode == 0, f"scripts/docker-engine.sh start failed:\n{started.stderr}"
    host = started.stdout.strip().removeprefix("DOCKER_HOST=")
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host
    try:
        yield host
    finally:
        if previous is None:
            del os.environ["DOCKER_HOST"]
        else:
            os.environ["DOCKER_HOST"] = previous
        if not was_running:
            stopped = engine_script("stop", timeout=120)
            assert stopped.returncode == 0, stopped.stderr


@pytest.fixture(scope="session")
def docker_images(docker_engine: str, pytestconfig: pytest.Config) -> Iterator[dict[str, str]]:
    """The images built; the variables selecting the stand-ins (none with a registry), also put in
    this session's environment so every devenv and compose the tests start runs them."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # the build's progress and size table, live
        done = subprocess.run(
            [sys.executable, "-m", "devenv.services.images", "build"],
            stdout=subprocess.PIPE,
            text=True,
            timeout=1800,
            check=False,
        )
    assert done.returncode == 0, "python -m devenv.services.images build failed (its output is above)"
    variables = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield variables
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
