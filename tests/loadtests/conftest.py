"""For the load tests: `devenv` run as a subprocess (the target is tests/conftest.py's `local_target`)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

LOADTESTS_DIR = Path(__file__).resolve().parents[2] / "loadtests"
UPSTREAM_KEY = "sk-loadtest-upstream-key"  # the locustfile's default project key


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
