"""`devenv status --watch` against the session's running stack: off a terminal each refresh is printed as
it happens (rich's Live alone printed nothing until Ctrl-C), and Ctrl-C ends it cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading

import pytest

from tests.local_stack import Stack
from tests.waiting import wait_for

REFRESH = re.compile(r"^─* ?devenv status (\d\d:\d\d:\d\d) ─*$")


@pytest.mark.slow
def test_watch_off_a_terminal_prints_each_refresh_until_ctrl_c(stack: Stack) -> None:
    lines: list[str] = []
    watcher = subprocess.Popen(
        [sys.executable, "-m", "devenv", "status", "--watch"],
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    reader = threading.Thread(target=lambda: lines.extend(iter(watcher.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        try:
            # a 4th heading: the first 3 refreshes are whole (Ctrl-C may cut the one being printed)
            wait_for(lambda: sum(bool(REFRESH.match(line.strip())) for line in lines) >= 4, 120)
        except AssertionError:
            raise AssertionError("no 4 refreshes within 120 s; it printed:\n" + "".join(lines)) from None
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(30) == 0, "".join(lines)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait(10)
    reader.join(10)
    output = "".join(lines)
    stamps = [m.group(1) for line in lines if (m := REFRESH.match(line.strip()))]
    assert len(set(stamps)) >= 2, output  # printed as they came, not all at the end
    refreshes = output.split("devenv status ")[1:]
    for refresh in refreshes[:3]:  # each one is the whole status: services, ECS tasks, the ALB's targets
        assert "services" in refresh and "proxy" in refresh, output
        assert "ECS services (realized)" in refresh and "ALB mirror" in refresh, output
    assert "Traceback" not in output
