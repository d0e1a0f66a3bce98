"""The docker tests' fixtures are not cut by the suite's per-test timeout (a cold image build outlasts it:
on a fresh machine `nox -s docker` failed every test at the build), while their bodies still are."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.docker_engine import ROOT

DOCKER_TEST_FILES = [
    "tests/devenv/runtime/test_docker_engine.py",
    "tests/devenv/runtime/test_docker.py",
    "tests/compose/test_compose_engine.py",
]

REPORT = textwrap.dedent(
    """
    import sys, pytest

    class Report:
        def pytest_collection_finish(self, session):
            for item in session.items:
                mark = item.get_closest_marker("timeout")
                print("TIMEOUT", item.nodeid, mark.args if mark else None, mark.kwargs if mark else None)

    sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:randomly", "-m", "docker", *sys.argv[1:]],
                         plugins=[Report()]))
    """
)


@pytest.mark.slow
def test_docker_tests_bound_their_body_and_leave_fixtures_to_their_own_timeouts() -> None:
    collected = subprocess.run(
        [sys.executable, "-c", REPORT, *DOCKER_TEST_FILES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    marks = [line.split(" ", 2)[2] for line in collected.stdout.splitlines() if line.startswith("TIMEOUT ")]
    assert len(marks) >= 5, collected.stdout  # the engine, compose and container tests were all seen
    assert all(mark == "(300.0,) {'func_only': True}" for mark in marks), marks
