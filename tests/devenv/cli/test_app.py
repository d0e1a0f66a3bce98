"""The `devenv` command starts without loading what its commands use: every command module imports its
implementation (boto3, the CDK side, Locust, the web server, TLS, YAML, ...) inside the command that runs
it, so `devenv --help`, `devenv status` and every subprocess of the tests pay only for what they use.

Checked in a fresh interpreter, by the modules it holds (what the import time would be depends on the
machine; `nox -s benchmark_cli` prints it)."""

from __future__ import annotations

import json
import subprocess
import sys

# Libraries that only some commands need, each costing tenths of a second to import.
HEAVY = (
    "boto3",
    "botocore",
    "moto",
    "aws_cdk",
    "jsii",
    "locust",
    "gevent",
    "uvicorn",
    "starlette",
    "watchfiles",
    "cryptography",
    "yaml",
    "httpx",
    "aiohttp",
    "asyncpg",
    "psycopg",
    "redis",
    "jinja2",
)


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds once it ran `code`."""
    script = f"{code}\nimport json, sys\nsys.stderr.write(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stderr))


def heavy(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in HEAVY)


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert heavy(modules_after("import devenv.cli.app")) == []


def test_the_check_sees_a_heavy_library_a_command_loads() -> None:
    """The deploy tools load botocore: the import a command does when it runs is seen."""
    assert "botocore" in {name.split(".")[0] for name in modules_after("import devenv.targets.local")}
