"""The ALB mirror's access log (one JSON line per request, see caddy_config.ACCESS_LOG_FIELDS), read as
it grows and added up into what the ALB's CloudWatch metrics count.

Why the access log and not Caddy's Prometheus metrics: only the per-request line is exact for what an
ALB reports. It says whether a target was chosen (RequestCount counts only those), whether the status
came from a target or from the load balancer itself (HTTPCode_Target_* apart from HTTPCode_ELB_*: a
request that finds no target in rotation passes the listener's and the fail-open server's proxies, which
Caddy's counters would count twice; here the listener's line is dropped and the fail-open server's
counted, its no-target answer as the ALB's own 503: see caddy_config), and the target's own time to response headers, the ALB's TargetResponseTime, with its true
minimum and maximum (Caddy's histograms time whole requests, in buckets). The cost: Caddy writes ~100
bytes per request to a file (measured here: 20-40 us of Caddy's CPU per request, the proxy's unchanged;
`benchmarks/metrics_benchmark.py`); this module parses them every few seconds, off the request path.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from devenv.services.caddy_config import FAIL_OPEN_PORT_FIELD, NO_TARGET_PORT_FIELD


@dataclass
class Tally:
    """What one target group's requests added up to since the last read."""

    requests: int = 0  # a target was chosen (the ALB's RequestCount)
    target_codes: Counter[str] = field(default_factory=Counter)  # "2XX".."5XX": the targets' statuses
    elb_codes: Counter[str] = field(default_factory=Counter)  # statuses the mirror made itself
    target_times_s: list[float] = field(default_factory=list)  # each target's time to response headers
    unreadable: int = 0  # lines that were not an access log entry

    def add(self, line: bytes) -> None:
        """Count one access log line."""
        try:
            entry = json.loads(line)
            status = int(entry.get("status") or 0)
            target = entry.get("target")
            target_status = entry.get("target_status")
            target_ms = entry.get("target_ms")
            target_port = str(target).rpartition(":")[2] if target else None
        except (ValueError, TypeError, AttributeError):
            self.unreadable += 1
            return
        if target_port is not None and target_port == entry.get(FAIL_OPEN_PORT_FIELD):
            return  # the listener's half of a fail-open request: its fail-open server's line counts it
        if target_port is not None and target_port == entry.get(NO_TARGET_PORT_FIELD):
            target = target_status = None  # no target registered: the ALB's own 503
        if target:
            self.requests += 1
        if target_status:
            self.target_codes[status_class(int(target_status))] += 1
            if target_ms is not None:
                self.target_times_s.append(float(target_ms) / 1000)
        elif status >= 100:  # 0: the client left before any answer was sent
            self.elb_codes[status_class(status)] += 1


def status_class(status: int) -> str:
    """The ALB metric's name part for an HTTP status: 503 -> "5XX"."""
    return f"{status // 100}XX"


class LogTail:
    """The complete lines a log file gained since the last `read_lines`, across Caddy's rolls (the file
    renamed aside, a new one started at the same path): the open file is read to its end before the new
    one is opened, so no line is lost or read twice. A file that does not exist yet has no lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None
        self._partial = b""

    def read_lines(self) -> list[bytes]:
        if self._file is None:
            self._file = self._open()
            if self._file is None:
                return []
        lines = self._drain(self._file)
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return lines  # rolled, the new file not created yet
        opened = os.fstat(self._file.fileno())
        if current.st_ino != opened.st_ino:
            lines += self._drain(self._file)  # what was written before the roll
            self._file.close()
            self._partial = b""
            self._file = self._open()
            if self._file is not None:
                lines += self._drain(self._file)
        return lines

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> BinaryIO | None:
        try:
            return self.path.open("rb")
        except FileNotFoundError:
            return None

    def _drain(self, file: BinaryIO) -> list[bytes]:
        chunks = (self._partial + file.read()).split(b"\n")
        self._partial = chunks.pop()  # a line still being written (usually b"")
        return [chunk for chunk in chunks if chunk]


def tally(lines: list[bytes]) -> Tally:
    """The Tally of some access log lines."""
    result = Tally()
    for line in lines:
        result.add(line)
    return result
