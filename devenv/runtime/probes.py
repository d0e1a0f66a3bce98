"""Readiness and health probes as small composable wait strategies.

A probe is a callable returning a ProbeResult; `all_of` composes them and `wait_until_ready`
polls one until it passes or a deadline expires.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str


Probe = Callable[[], ProbeResult]


def tcp(host: str, port: int, timeout_s: float = 0.5) -> Probe:
    """Passes once something accepts TCP connections on host:port."""

    def check() -> ProbeResult:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return ProbeResult(True, f"tcp {host}:{port} open")
        except OSError as exc:
            return ProbeResult(False, f"tcp {host}:{port}: {exc.strerror or exc}")

    return check


def tcp_exchange(host: str, port: int, send: bytes, expect: bytes, timeout_s: float = 0.5) -> Probe:
    """Passes when the server answers `send` with a reply starting with `expect` (e.g. Redis PING)."""

    def check() -> ProbeResult:
        try:
            with socket.create_connection((host, port), timeout=timeout_s) as conn:
                conn.sendall(send)
                reply = conn.recv(256)
        except OSError as exc:
            return ProbeResult(False, f"{host}:{port}: {exc.strerror or exc}")
        if reply.startswith(expect):
            return ProbeResult(True, f"{host}:{port} answered {expect!r}")
        return ProbeResult(False, f"{host}:{port} answered {reply[:60]!r}, expected {expect!r}")

    return check


def http(url: str, expect_status: int = 200, timeout_s: float = 1.0) -> Probe:
    """Passes when GET url answers with expect_status."""

    def check() -> ProbeResult:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, urllib.error.URLError) as exc:
            return ProbeResult(False, f"GET {url}: {getattr(exc, 'reason', exc)}")
        return ProbeResult(status == expect_status, f"GET {url} -> {status}")

    return check


def command(argv: Sequence[str], timeout_s: float = 2.0) -> Probe:
    """Passes when the command exits 0."""

    def check() -> ProbeResult:
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return ProbeResult(False, f"{argv[0]}: {exc}")
        output = (done.stdout + done.stderr).strip().splitlines()
        return ProbeResult(done.returncode == 0, output[-1] if output else f"exit {done.returncode}")

    return check


def all_of(*probes: Probe) -> Probe:
    """Passes when every probe passes, checked in order; reports the first failure."""

    def check() -> ProbeResult:
        details = []
        for probe in probes:
            result = probe()
            if not result.ok:
                return result
            details.append(result.detail)
        return ProbeResult(True, "; ".join(details))

    return check


def held_for(probe: Probe, hold_s: float) -> Probe:
    """Passes once `probe` has passed on every check for `hold_s` seconds: a state that flaps (a client
    still reconnecting after a fault) is not yet steady."""
    held_since: list[float] = []

    def check() -> ProbeResult:
        result = probe()
        if not result.ok:
            held_since.clear()
            return result
        now = time.monotonic()
        held_since[:] = held_since or [now]
        held = now - held_since[0]
        if held >= hold_s:
            return ProbeResult(True, f"{result.detail} (held {held:.1f} s)")
        return ProbeResult(False, f"{result.detail}, held {held:.1f} of {hold_s:g} s")

    return check


def wait_until_ready(
    probe: Probe,
    timeout_s: float,
    interval_s: float = 0.02,
    alive: Callable[[], bool] = lambda: True,
) -> ProbeResult:
    """Poll `probe` until it passes, `alive()` turns false, or `timeout_s` passes; return the last result."""
    deadline = time.monotonic() + timeout_s
    result = ProbeResult(False, "not checked yet")
    while True:
        result = probe()
        if result.ok or not alive():
            return result
        if time.monotonic() >= deadline:
            return ProbeResult(False, f"not ready after {timeout_s:g} s: {result.detail}")
        time.sleep(interval_s)
        interval_s = min(interval_s * 1.5, 0.25)
