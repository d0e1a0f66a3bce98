"""Run the real `devenv` command in a subprocess against a private state dir and free ports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devenv.runtime.ports import free_port
from tests.conftest import reachable_tmpdir


@dataclass
class DevenvCli:
    """`devenv` with its own state dir and ports, so tests never touch a developer's stack."""

    state_dir: Path
    env: dict[str, str]

    def run(
        self, *args: str, timeout: float = 90, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devenv", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **(extra_env or {})},
            check=False,
        )

    def status(self) -> dict[str, Any]:
        done = self.run("status", "--output", "json")
        return dict(json.loads(done.stdout))


@pytest.fixture
def devenv_cli() -> Iterator[DevenvCli]:
    state_dir = reachable_tmpdir("devenv-test-cli-")
    env = {
        **os.environ,
        "DEVENV_STATE_DIR": str(state_dir),
        "DEVENV_POSTGRES_PORT": str(free_port()),
        "DEVENV_REDIS_PORT": str(free_port()),
        "DEVENV_EMULATOR_PORT": str(free_port()),
    }
    cli = DevenvCli(state_dir, env)
    yield cli
    cli.run("down", timeout=60)
    shutil.rmtree(state_dir, ignore_errors=True)
