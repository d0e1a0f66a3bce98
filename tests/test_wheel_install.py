"""devenv runs from its wheel alone, outside the checkout: the built wheel in a fresh venv, and a folder
that holds only the CDK app (`stack/`).

Slow (about a minute on a busy 2-core machine: the install comes from uv's cache at the locked versions,
and `devenv parity` synthesizes the app once), so marked `slow`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEFT_OUT = shutil.ignore_patterns("node_modules", "cdk.out", "__pycache__")


def uv() -> list[str]:
    """uv as `uv run` names it, or on PATH, or as the module setup.sh installs."""
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def run(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{argv} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    )
    return done


@pytest.mark.slow
def test_the_wheel_runs_devenv_from_a_folder_holding_only_the_cdk_app(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DEVENV_", "PYTHON", "VIRTUAL_ENV", "UV_PROJECT"))
    }
    run([*uv(), "build", "--wheel", "--quiet", "--out-dir", str(tmp_path / "dist"), str(ROOT)], ROOT, env)
    constraints = tmp_path / "constraints.txt"
    run([*uv(), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--quiet",
         "--output-file", str(constraints)], ROOT, env)  # fmt: skip
    venv = tmp_path / "venv"
    run([*uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], tmp_path, env)
    [wheel] = (tmp_path / "dist").glob("devenv-*.whl")
    run([*uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         "--constraint", str(constraints), str(wheel)], tmp_path, env)  # fmt: skip

    project = tmp_path / "project"
    shutil.copytree(ROOT / "stack", project / "stack", ignore=LEFT_OUT)
    devenv = str(venv / "bin" / "devenv")
    assert "token" in run([devenv, "--help"], project, env).stdout
    assert "--detach" in run([devenv, "up", "--help"], project, env).stdout
    shipped = run(
        [str(venv / "bin" / "python"), "-c", "import importlib.util as u; print(u.find_spec('stack'))"],
        tmp_path,
        env,
    )
    assert shipped.stdout.strip() == "None"  # the wheel ships devenv and llmproxy, not the CDK app

    parity = run(
        [devenv, "--state-dir", str(tmp_path / "state"), "parity", "--output", "json"], project, env, 300
    )
    document = json.loads(parity.stdout)
    assert document["unsupported"] == 0 and sum(document["counts"].values()) > 50
    assert list((tmp_path / "state" / "cdk").glob("*/LlmProxyStack.template.json"))  # synthesized here
