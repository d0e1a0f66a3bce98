"""How long `devenv up` takes, cold and warm, median of N runs (default 5). Not a test: machines are
noisy; run it on demand (`nox -s benchmark_up`) and read the figures.

- `--infra-only`: `devenv up -d --infra-only` to all-healthy (Postgres, Redis, the emulator). Cold = a fresh
  state dir (initdb included); warm = the same state dir again.
- default: `devenv up -d --output json` to the first successful chat completion through the ALB mirror
  (at the URL `up` prints; the mock upstream with no added latency). Cold = no cached cloud assembly (synth +
  the CDK CLI deploy included) and a `devenv token create` for the completion; warm = the assembly cached
  and the saved local cloud restored, the completion made with the cold run's token (tokens outlive `down`,
  as a developer's own does).
- `--runtime docker`: the same with containers (the images built beforehand: `python -m devenv.services.images
  build`, whose table gives the build times and sizes); cold also makes the data volumes.
  `--runtime native docker` measures both in the same run, interleaved (one runtime's cold and warm, then
  the other's, each run), so that both see the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from devenv.config import INSTANT_MOCK_UPSTREAM, environment


def devenv(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "devenv", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"`devenv {' '.join(args)}` failed:\n{done.stderr}")
    return done.stdout


def first_completion(alb_url: str, token: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{alb_url.rsplit(':', 1)[1]}/v1/chat/completions",
        data=json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def timed_up(
    env: dict[str, str], infra_only: bool, runtime: str, token: str | None
) -> tuple[float, str | None]:
    """Seconds from `up -d` to all-healthy (infra only) or to the first chat completion through the ALB
    (the URL from up's own JSON), with `token`, or with one `token create` makes (then counted in); and the
    token used, for the next run."""
    began = time.perf_counter()
    up = [
        "up",
        "-d",
        "--quiet",
        "--output",
        "json",
        "--runtime",
        runtime,
        *(["--infra-only"] if infra_only else []),
    ]
    document = json.loads(devenv(env, *up))
    if not infra_only:
        token = token or json.loads(devenv(env, "token", "create", "--output", "json"))["token"]
        first_completion(document["alb_url"], token)
    took = time.perf_counter() - began
    devenv(env, "down", "--quiet")
    return took, token


def wipe(env: dict[str, str]) -> None:
    """The state dir's data (and, under docker, its volumes): the next run is cold again."""
    devenv(env, "down", "--volumes", "--quiet")


def fresh_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--infra-only", action="store_true")
    parser.add_argument(
        "--runtime", nargs="+", choices=["native", "docker"], default=["native"], help="one or both"
    )
    args = parser.parse_args()
    cold: dict[str, list[float]] = {runtime: [] for runtime in args.runtime}
    warm: dict[str, list[float]] = {runtime: [] for runtime in args.runtime}
    for _ in range(args.runs):
        for runtime in args.runtime:
            state_dir, cache_dir = fresh_dir("devenv-bench-"), fresh_dir("devenv-bench-cdk-")
            env = {
                **os.environ,
                "DEVENV_STATE_DIR": str(state_dir),
                "DEVENV_CDK_CACHE_DIR": str(cache_dir),
                **environment(INSTANT_MOCK_UPSTREAM),  # the time of `up`, not of the mock's answer
            }
            try:
                took, token = timed_up(env, args.infra_only, runtime, None)
                cold[runtime].append(took)
                print(f"{runtime} cold: {cold[runtime][-1]:.2f} s", flush=True)  # a long run shows progress
                warm[runtime].append(timed_up(env, args.infra_only, runtime, token)[0])
                print(f"{runtime} warm: {warm[runtime][-1]:.2f} s", flush=True)
            finally:
                wipe(env)
                shutil.rmtree(state_dir, ignore_errors=True)
                shutil.rmtree(cache_dir, ignore_errors=True)
    what = (
        "up -d --infra-only to all-healthy"
        if args.infra_only
        else "up -d to the first chat completion through the ALB"
    )
    for runtime in args.runtime:
        print(f"devenv {what}, runtime {runtime}, {args.runs} run(s) each")
        print(
            f"  cold: median {statistics.median(cold[runtime]):.2f} s  runs {[round(x, 2) for x in cold[runtime]]}"
        )
        print(
            f"  warm: median {statistics.median(warm[runtime]):.2f} s  runs {[round(x, 2) for x in warm[runtime]]}"
        )


if __name__ == "__main__":
    main()
