"""The composable wait strategies of devenv/runtime/probes.py against a real listening socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from devenv.runtime.probes import ProbeResult, held_for, tcp, wait_until_ready


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


def test_held_for_passes_only_after_the_probe_held_without_a_break(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    answers = [True, True, False] + [True] * 100
    checked: list[tuple[float, bool]] = []

    def flapping() -> ProbeResult:
        held = answers[len(checked)]
        checked.append((time.monotonic(), held))
        return tcp("127.0.0.1", port)() if held else ProbeResult(False, "refused")

    result = wait_until_ready(held_for(flapping, hold_s=0.2), timeout_s=5, interval_s=0.05)
    assert result.ok and "held" in result.detail
    broke_at = max(t for t, held in checked if not held)
    assert checked[-1][0] - broke_at >= 0.2  # the clock restarted at the break
    # a probe that never holds long enough says how far it got
    never = held_for(lambda: ProbeResult(True, "up"), hold_s=60)
    result = wait_until_ready(never, timeout_s=0.3, interval_s=0.05)
    assert not result.ok and "of 60 s" in result.detail


def test_held_for_reports_the_failure_that_broke_the_hold() -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    result = held_for(tcp("127.0.0.1", port), hold_s=0.1)()
    assert not result.ok and f"tcp 127.0.0.1:{port}" in result.detail
