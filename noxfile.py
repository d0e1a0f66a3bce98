"""Every check CI runs (`nox` runs the default sessions), plus on-demand benchmarks.

Sessions run inside the project's locked uv environment (`uv run --frozen`), so a session costs no
extra install and tests see exactly what `devenv` users get.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nox

nox.options.default_venv_backend = "none"
# the smoke load test and the failover experiments run inside `tests`, on the suite's one shared stack;
# loadtest_smoke and failover_smoke bring up a stack of their own and stay available on demand
nox.options.sessions = ["lint", "typecheck", "tests"]


def uv_run(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    # `uv run` tells its children where uv is (UV): no need for uv on PATH
    session.run(os.environ.get("UV", "uv"), "run", "--frozen", *args, external=True, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    uv_run(session, "ruff", "check", ".")
    uv_run(session, "ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over the packages, the tests and the load tests."""
    uv_run(session, "mypy", "devenv", "llmproxy", "stack", "tests", "loadtests")


# Three pytest-xdist workers, whole files each: most whole-stack tests wait on the stack (alarm windows,
# task starts, experiment loads), so three of them overlap well even on 2 cores (two left a quarter of the
# CPU idle); each worker has its own shared stack. Files in collection order, which starts the modules
# with the most slow tests first, spread over the first 40% of the run (tests/conftest.py), rather than
# xdist's most-tests-first, which left the single-test multi-minute files for last.
# `nox -s tests -- -q -p no:xdist` runs in one process.
TEST_WORKERS = ["-n", "3", "--dist", "loadfile", "--no-loadscope-reorder"]
# The Docker path's tests in file order: a module's stack is taken down by its last test.
DOCKER_TESTS = ["-p", "no:randomly", "-q", "--durations=10", "-m", "docker"]
# The ports the tests pick (tests/ports.py): the Docker tests beside the others get their own.
PORTS_BESIDE, PORTS_OTHERS = "15000-18000", "18000-32000"


@contextlib.contextmanager
def docker_tests_beside(session: nox.Session) -> Iterator[None]:
    """The Docker path's tests (`nox -s docker`) in a pytest of their own while the block runs: they mostly
    wait on image builds and containers. Their output is shown after the block, and their failure fails
    the session; the block's own failure waits for them (their fixtures stop what they started)."""
    # not session.create_tmp(): it points TMPDIR into the checkout, where every test's temp folder would sit
    # inside this project (devenv finds its project by walking up)
    descriptor, name = tempfile.mkstemp(prefix="devenv-docker-tests-", suffix=".log")
    log_path = Path(name)
    session.log(f"the Docker path's tests run beside (pytest {' '.join(DOCKER_TESTS)}), output in {log_path}")
    with os.fdopen(descriptor, "wb") as log:
        beside = subprocess.Popen(
            [os.environ.get("UV", "uv"), "run", "--frozen", "pytest", *DOCKER_TESTS],
            env={**os.environ, "TESTS_PORT_RANGE": PORTS_BESIDE, "TESTS_FIXED_PORTS": "0"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        code = beside.wait()
        session.log("the Docker path's tests:")
        print(log_path.read_text(errors="replace"), flush=True)
    if code != 0:
        session.error(f"the Docker path's tests failed (pytest exit code {code}; output above)")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite: real Postgres, Redis, emulator, Caddy and proxy processes; the Docker path's
    tests beside, against a real Docker Engine. In random order (pytest-randomly prints its seed:
    `--randomly-seed=N` repeats that order, `-p no:randomly` keeps the file order), so that no test leans on
    another's side effects. With arguments, only the pytest they give."""
    if session.posargs:
        uv_run(session, "pytest", *session.posargs)
        return
    with docker_tests_beside(session):
        others = ["-q", *TEST_WORKERS, "--durations=25", "-m", "not docker and not unsettled"]
        uv_run(session, "pytest", *others, env={"TESTS_PORT_RANGE": PORTS_OTHERS})


@nox.session
def unsettled(session: nox.Session) -> None:
    """Tests not yet reliable on a 2-core machine, kept out of CI until they are (each says why beside its
    mark): the chaos suite of devenv itself and the manual-count scale-in run of the signals test. On demand."""
    uv_run(session, "pytest", *(session.posargs or ["-q", "-p", "no:randomly", "-m", "unsettled"]))


@nox.session
def tests_fast(session: nox.Session) -> None:
    """The inner loop: every test not marked slow or docker (no whole stack, Docker engine or wheel install)."""
    default = ["-q", *TEST_WORKERS, "--durations=10"]
    uv_run(session, "pytest", "-m", "not slow and not docker", *(session.posargs or default))


@nox.session
def docker(session: nox.Session) -> None:
    """The Docker path against a real Docker Engine (tests marked `docker`): an engine of our own started
    (scripts/docker-engine.sh) and stopped after, the images built (air-gapped stand-ins where no
    registry answers), `devenv up --runtime docker` end to end, compose's core profile. Skipped, with
    the reason, where no engine can be started. In file order: one stack for the module, taken down last."""
    uv_run(session, "pytest", *(session.posargs or DOCKER_TESTS))


@nox.session
def benchmark_up(session: nox.Session) -> None:
    """`devenv up` cold and warm, median of 5: infrastructure only, then to the first chat completion."""
    uv_run(session, "python", "benchmarks/up_benchmark.py", "--infra-only", *session.posargs)
    uv_run(session, "python", "benchmarks/up_benchmark.py", *session.posargs)


@nox.session
def benchmark_watch(session: nox.Session) -> None:
    """Live reload's save-to-serving: an edit under llmproxy/ to the first answer from a new task."""
    uv_run(session, "python", "benchmarks/watch_benchmark.py", *session.posargs)


@nox.session
def benchmark_cli(session: nox.Session) -> None:
    """`devenv --help`, `--version` and `status` (no stack) wall time, median of 5: the start-up cost."""
    uv_run(session, "python", "benchmarks/cli_benchmark.py", *session.posargs)


@nox.session
def benchmark_deploy(session: nox.Session) -> None:
    """`devenv deploy --target local` wall time: cold, warm, fresh emulator; median of 5 (prints figures)."""
    uv_run(session, "python", "benchmarks/deploy_benchmark.py", *session.posargs)


@nox.session
def loadtest_smoke(session: nox.Session) -> None:
    """A ~20 s smoke load test against the local stack (on free ports), thresholds enforced."""
    args = session.posargs or ["--profile", "smoke", "--duration", "20s"]
    uv_run(session, "python", "loadtests/against_local_stack.py", "loadtest", *args)


@nox.session
def failover_smoke(session: nox.Session) -> None:
    """Two short failover experiments on the local stack (free ports), with CI's generous tolerances."""
    names = session.posargs or ["proxy-task-kill", "redis-cut-5s"]
    generous = ["max_failure_rate=0.05", "max_recovery_s=20", "max_p99_ms=5000"]
    tolerances = [arg for value in generous for arg in ("--tolerance", value)]
    script = "loadtests/against_local_stack.py"
    uv_run(session, "python", script, "failover", *names, "--duration", "15", *tolerances)


@nox.session
def failover(session: nox.Session) -> None:
    """Every failover experiment on the local stack, with the criteria in their files (on demand)."""
    uv_run(session, "python", "loadtests/against_local_stack.py", "failover", *(session.posargs or ["--all"]))


@nox.session
def benchmark(session: nox.Session) -> None:
    """The proxy's max RPS within the ramp thresholds on the local stack (prints the ramp's figures); the
    mock upstream answers at once, so that the figures are the proxy's."""
    args = session.posargs or ["--profile", "ramp", "--users", "300", "--duration", "150s"]
    script = "loadtests/against_local_stack.py"
    uv_run(session, "python", script, "--instant-upstream", "loadtest", *args)


@nox.session
def benchmark_proxy(session: nox.Session) -> None:
    """The proxy vs the mock upstream directly under wrk: added latency, max RPS, CPU/request, RSS."""
    uv_run(session, "python", "benchmarks/proxy_benchmark.py", *session.posargs)


@nox.session
def benchmark_loadgen(session: nox.Session) -> None:
    """Locust with 1 worker vs 2 workers against the mock upstream directly: the load generator's RPS."""
    uv_run(session, "python", "benchmarks/loadgen_benchmark.py", *session.posargs)


@nox.session
def benchmark_metrics(session: nox.Session) -> None:
    """Proxy RPS and CPU/request through the ALB mirror with metrics collection on vs off, interleaved."""
    uv_run(session, "python", "benchmarks/metrics_benchmark.py", *session.posargs)
