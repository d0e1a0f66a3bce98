"""`devenv doctor` against this machine: every port setting is checked, and a busy one names the setting
that moves it."""

from __future__ import annotations

import json
import socket

from devenv.config import Settings
from tests.devenv.cli.conftest import DevenvCli


def test_a_busy_alb_port_fails_doctor_naming_the_setting(devenv_cli: DevenvCli) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = devenv_cli.run("doctor", "--output", "json", extra_env={"DEVENV_ALB_PORT": str(port)})
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    [busy] = [check for check in report["checks"] if check["name"] == f"port {port}"]
    assert not busy["ok"] and "alb_port" in busy["detail"]
    assert "DEVENV_ALB_PORT" in busy["fix"] and "--auto-ports" in busy["fix"]


def test_doctor_checks_every_port_setting(devenv_cli: DevenvCli) -> None:
    done = devenv_cli.run("doctor", "--output", "json")
    checked = {
        check["detail"].rsplit("(", 1)[-1].rstrip(")")
        for check in json.loads(done.stdout)["checks"]
        if check["name"].startswith("port ")
    }
    assert checked == {name for name in Settings.model_fields if name.endswith("_port")}
    assert {"alb_port", "alb_https_port", "aurora_port", "elasticache_port", "mock_upstream_port"} <= checked
