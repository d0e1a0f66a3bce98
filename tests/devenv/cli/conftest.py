"""Run the real `devenv` command in a subprocess against a private state dir and free ports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import reachable_tmpdir
from tests.ports import free_port


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
    done = cli.run("down", timeout=60)
    if "did not stop within" in done.stderr:  # the test passed, but its supervisor hung: keep what it did
        log = (state_dir / "logs" / "supervisor.log").read_text(errors="replace").splitlines()
        warnings.warn(f"{done.stderr.strip()}; its last lines:\n" + "\n".join(log[-40:]), stacklevel=1)
    shutil.rmtree(state_dir, ignore_errors=True)
