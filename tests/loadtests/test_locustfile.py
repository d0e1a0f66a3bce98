"""The locustfile run by Locust itself (as a person would), without devenv's preflight in front."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from devenv.loadtest.runner import LOCUSTFILE, SHAPES
from tests.conftest import ProxyTarget
from tests.loadtests.conftest import LOADTESTS_DIR


def test_a_failed_provisioning_is_a_set_up_error(local_target: ProxyTarget, tmp_path: Path) -> None:
    # the mock upstream has no management API: creating the run's project fails
    result = subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", f"{LOADTESTS_DIR / LOCUSTFILE},{LOADTESTS_DIR / SHAPES}", "--headless", "--only-summary",
            "--host", local_target.mock_url, "--management-token", "any", "--load-profile", "smoke",
            "--load-duration", "3s", "--run-dir", str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["verdict"] == "error" and summary["requests"] == 0
    assert summary["setup_error"].startswith(f"POST /manage/projects on {local_target.mock_url} answered 404")
