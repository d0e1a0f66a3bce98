"""`devenv up/status/logs/down` with real Postgres, Redis and the emulator."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.devenv.cli.conftest import DevenvCli
from tests.waiting import wait_for

SERVICES = {"postgres", "redis", "emulator"}


@pytest.mark.slow
def test_up_status_restart_second_up_and_down(devenv_cli: DevenvCli) -> None:
    done = devenv_cli.run("up", "-d", "--infra-only", "--output", "json")
    assert done.returncode == 0, done.stderr

    status = devenv_cli.status()
    assert status["running"] is True
    assert {"region", "credentials", "state_dir"} <= set(status)
    assert status["region"] == "us-east-1"
    assert status["credentials"] == {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    by_name = {svc["name"]: svc for svc in status["services"]}
    assert set(by_name) == SERVICES
    for svc in status["services"]:
        assert set(svc) >= {"name", "state", "health", "pid", "ports", "url", "uptime_s"}
        assert svc["state"] == "running" and svc["health"] == "healthy"
        assert psutil.pid_exists(svc["pid"])
    assert by_name["redis"]["ports"]["redis"] == int(devenv_cli.env["DEVENV_REDIS_PORT"])

    second = devenv_cli.run("up", "-d", "--infra-only")
    assert second.returncode == 6
    assert "already running" in second.stderr

    old_redis = by_name["redis"]["pid"]
    os.kill(old_redis, signal.SIGKILL)

    def redis_replaced() -> dict[str, Any] | None:
        svc = {s["name"]: s for s in devenv_cli.status()["services"]}["redis"]
        return svc if svc["state"] == "running" and svc["pid"] not in (None, old_redis) else None

    replaced = wait_for(redis_replaced, 20)
    assert replaced["restarts"] == 1

    logs = devenv_cli.run("logs", "redis", "--tail", "200")
    assert logs.returncode == 0 and "Ready to accept connections" in logs.stdout

    pids = [s["pid"] for s in devenv_cli.status()["services"]]
    down = devenv_cli.run("down")
    assert down.returncode == 0, down.stderr
    assert not [pid for pid in pids if psutil.pid_exists(pid)]
    after = devenv_cli.run("status", "--output", "json")
    assert after.returncode == 7  # NotRunningError
    assert '"running": false' in after.stdout


@pytest.mark.slow
def test_foreground_up_stops_everything_on_ctrl_c(devenv_cli: DevenvCli) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devenv", "up", "--infra-only"],
        env=devenv_cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: devenv_cli.status().get("supervisor", {}).get("phase") == "ready", 60)
        pids = [s["pid"] for s in devenv_cli.status()["services"]]
        assert len(pids) == 3
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopped" in out
    assert not [pid for pid in pids if psutil.pid_exists(pid)]


def test_busy_port_is_named_with_its_holder(devenv_cli: DevenvCli) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = devenv_cli.run("up", "-d", "--infra-only", extra_env={"DEVENV_REDIS_PORT": str(port)})
    assert done.returncode == 4
    assert f"port {port} for redis is in use" in done.stderr
    assert "--auto-ports" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_auto_ports_picks_a_free_port_instead(devenv_cli: DevenvCli) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = devenv_cli.run(
            "up", "-d", "--infra-only", "--auto-ports", extra_env={"DEVENV_REDIS_PORT": str(port)}
        )
        assert done.returncode == 0, done.stderr
        redis_port = {s["name"]: s for s in devenv_cli.status()["services"]}["redis"]["ports"]["redis"]
    assert redis_port != port


def test_bad_config_names_the_key_and_the_source(devenv_cli: DevenvCli) -> None:
    done = devenv_cli.run("status", extra_env={"DEVENV_POSTGRES_PORT": "not-a-port"})
    assert done.returncode == 2
    assert "postgres_port" in done.stderr and "environment" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_key_in_devenv_toml_is_refused(devenv_cli: DevenvCli, tmp_path: Path) -> None:
    (tmp_path / "devenv.toml").write_text("postgres_prot = 5432\n")
    done = subprocess.run(
        [sys.executable, "-m", "devenv", "status"],
        cwd=tmp_path,
        env=devenv_cli.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown setting 'postgres_prot'" in done.stderr and "devenv.toml" in done.stderr


def test_docker_runtime_is_refused_clearly(devenv_cli: DevenvCli) -> None:
    done = devenv_cli.run("up", "-d", "--runtime", "docker")
    assert done.returncode == 2
    assert "no Docker daemon answers" in done.stderr


def test_logs_of_an_unknown_service_lists_the_known_ones(devenv_cli: DevenvCli) -> None:
    assert devenv_cli.run("up", "-d", "--infra-only").returncode == 0
    done = devenv_cli.run("logs", "nope")
    assert done.returncode == 2
    assert "postgres" in done.stderr and "redis" in done.stderr


@pytest.mark.slow
def test_status_shows_a_compressed_clock(devenv_cli: DevenvCli) -> None:
    """A time_scale other than AWS's is never a silent difference: `status` says it, as data and as text."""
    scaled = {"DEVENV_TIME_SCALE": "20"}
    done = devenv_cli.run("up", "-d", "--infra-only", extra_env=scaled)
    assert done.returncode == 0, done.stderr
    try:
        document = devenv_cli.run("status", "--output", "json", extra_env=scaled)
        assert json.loads(document.stdout)["time_scale"] == 20
        text = devenv_cli.run("status", extra_env=scaled)
        assert "time_scale 20" in " ".join(text.stdout.split())
    finally:
        assert devenv_cli.run("down", extra_env=scaled).returncode == 0
