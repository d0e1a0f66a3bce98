"""Bring the local stack up on free ports in a throw-away state dir, run `devenv loadtest` or
`devenv failover` against it, and bring it down again; exits with that command's code (0 pass,
1 breach, 2 set-up error or aborted).

    python loadtests/against_local_stack.py loadtest --profile smoke --duration 20s    # nox -s loadtest_smoke
    python loadtests/against_local_stack.py --instant-upstream loadtest --profile ramp  # nox -s benchmark
    python loadtests/against_local_stack.py failover --all                             # nox -s failover
    python loadtests/against_local_stack.py failover proxy-task-kill --duration 15     # one, shorter

Every `*_port` setting gets a free port, so it never collides with a developer's stack or another run.
The mock upstream answers with `up`'s realistic latency, or at once with `--instant-upstream` (for
measurements of the proxy itself).
Reports and run folders are kept under ./.devenv/loadtests or ./.devenv/failover.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devenv.config import INSTANT_MOCK_UPSTREAM, Settings, environment
from devenv.runtime.ports import free_port, is_free

COMMANDS = {"loadtest": "loadtests", "failover": "failover"}  # command -> its report folder under .devenv


def devenv(*args: str, env: dict[str, str], timeout: float) -> int:
    print("+ devenv " + " ".join(args), flush=True)
    return subprocess.run(
        [sys.executable, "-m", "devenv", *args], env=env, timeout=timeout, check=False
    ).returncode


def throwaway_env(command: str, state_dir: str, instant_upstream: bool) -> dict[str, str]:
    """The caller's environment, pointed at `state_dir` and free ports."""
    env = {k: v for k, v in os.environ.items() if k not in ("MANAGEMENT_TOKEN", "DEVENV_TARGET_URL")}
    env["DEVENV_STATE_DIR"] = state_dir
    for name in Settings.model_fields:
        if name.endswith("_port"):
            env[f"DEVENV_{name.upper()}"] = str(free_port())
    if is_free(8081):  # the local props' upstreamUrl: another port is another template (a new synth)
        env["DEVENV_MOCK_UPSTREAM_PORT"] = "8081"
    if instant_upstream:
        env.update(environment(INSTANT_MOCK_UPSTREAM))
    if command == "failover":
        env["DEVENV_AUTOSCALING"] = "false"  # an experiment sets the desired counts it needs
    return env


def main(argv: list[str]) -> int:
    instant_upstream = argv[:1] == ["--instant-upstream"]
    argv = argv[instant_upstream:]
    if not argv or argv[0] not in COMMANDS:
        print(
            f"usage: against_local_stack.py [--instant-upstream] {{{'|'.join(COMMANDS)}}} [ARGS...]",
            file=sys.stderr,
        )
        return 2
    command, args = argv[0], argv[1:]
    state_dir = tempfile.mkdtemp(prefix=f"devenv-{command}-")
    os.chmod(state_dir, 0o755)  # the non-root Postgres user must reach its data dir
    env = throwaway_env(command, state_dir, instant_upstream)
    try:
        if devenv("up", "-d", env=env, timeout=600) != 0:
            print("the local stack did not come up; see the logs above", file=sys.stderr)
            return 2
        if "--report-dir" not in args:  # keep the report after the throw-away state dir is gone
            args = [*args, "--report-dir", str(Path.cwd() / ".devenv" / COMMANDS[command])]
        return devenv(command, "--target", "local", *args, env=env, timeout=3600)
    finally:
        devenv("down", env=env, timeout=180)
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
