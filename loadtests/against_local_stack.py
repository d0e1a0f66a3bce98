"""Bring the local stack up on free ports in a throw-away state dir, run `devenv loadtest` against it, and
bring it down again; exits with the load test's code (0 pass, 1 breach, 2 set-up error).

    python loadtests/against_local_stack.py --profile smoke --duration 20s     # nox -s loadtest_smoke
    python loadtests/against_local_stack.py --profile ramp --users 300         # nox -s benchmark

Every `*_port` setting gets a free port, so it never collides with a developer's stack or another run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devenv.config import Settings
from devenv.runtime.ports import free_port, is_free


def devenv(*args: str, env: dict[str, str], timeout: float) -> int:
    print("+ devenv " + " ".join(args), flush=True)
    return subprocess.run(
        [sys.executable, "-m", "devenv", *args], env=env, timeout=timeout, check=False
    ).returncode


def main(argv: list[str]) -> int:
    state_dir = tempfile.mkdtemp(prefix="devenv-loadtest-")
    os.chmod(state_dir, 0o755)  # the non-root Postgres user must reach its data dir
    env = {k: v for k, v in os.environ.items() if k not in ("MANAGEMENT_TOKEN", "DEVENV_TARGET_URL")}
    env["DEVENV_STATE_DIR"] = state_dir
    for name in Settings.model_fields:
        if name.endswith("_port"):
            env[f"DEVENV_{name.upper()}"] = str(free_port())
    if is_free(8081):  # the local props' upstreamUrl: another port is another template (a new synth)
        env["DEVENV_MOCK_UPSTREAM_PORT"] = "8081"
    try:
        if devenv("up", "-d", env=env, timeout=300) != 0:
            print("the local stack did not come up; see the logs above", file=sys.stderr)
            return 2
        if "--report-dir" not in argv:  # keep the report after the throw-away state dir is gone
            argv = [*argv, "--report-dir", str(Path.cwd() / ".devenv" / "loadtests")]
        return devenv("loadtest", "--target", "local", *argv, env=env, timeout=3600)
    finally:
        devenv("down", env=env, timeout=120)
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
