"""The log files under `<state dir>/logs/`: one per process, `<name>.log`; an ECS task's process is named
`<service>-<first 8 characters of its task id>`, so a service's tasks, running or stopped, are found by
name alone. This module reads them (last lines, the time of each line) and keeps only the last few
stopped tasks' logs per service.

Lines carry the time in their own program's format; `line_time` knows the ones devenv runs (JSON with
`time` or Caddy's `ts`, Postgres, Redis, werkzeug, and devenv's own marker lines). A line without a time
takes the time of the line before it.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from calendar import timegm
from collections.abc import Iterable
from pathlib import Path

from devenv.errors import UsageError

TASK_NAME = re.compile(r"^(?P<service>.+)-(?P<task>[0-9a-f]{8})$")
KEEP_STOPPED_TASKS = 5  # per service: enough to read why the last ones stopped
SINCE_WINDOW_BYTES = 8 * 1024 * 1024  # how far back `--since` looks in one file
MARKER_PREFIX = "--- devenv "

# (pattern, strptime format, in UTC) for times at a known place in a line
_TIME_FORMATS = [
    (re.compile(r"^--- devenv (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)"), "%Y-%m-%dT%H:%M:%S", False),
    (re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)? UTC"), "%Y-%m-%d %H:%M:%S", True),  # Postgres
    (re.compile(r"^\d+:[A-Z] (\d\d \w{3} \d{4} \d\d:\d\d:\d\d)"), "%d %b %Y %H:%M:%S", False),  # Redis
    (re.compile(r"\[(\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d)\]"), "%d/%b/%Y %H:%M:%S", False),  # werkzeug
]


def marker(what: str) -> str:
    """The line devenv writes into a log before each start of its process (or run of a command)."""
    return f"{MARKER_PREFIX}{time.strftime('%Y-%m-%dT%H:%M:%S')}: {what} ---\n"


def log_names(logs_dir: Path) -> list[str]:
    """Every process (and command) that has a log, by name."""
    return sorted(path.stem for path in logs_dir.glob("*.log")) if logs_dir.is_dir() else []


def service_of(name: str) -> str | None:
    """The ECS service a task's process belongs to (None for devenv's own services)."""
    match = TASK_NAME.match(name)
    return match["service"] if match else None


def select(available: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """The logs `wanted` names: a process (`proxy-1a2b3c4d`, `postgres`) or an ECS service (`proxy`: all
    its tasks). An unknown name is a UsageError listing what there is."""
    available = sorted(available)
    chosen: list[str] = []
    for name in wanted:
        matches = [log for log in available if log == name or service_of(log) == name]
        if not matches:
            services = sorted({s for log in available if (s := service_of(log))})
            processes = [log for log in available if service_of(log) is None]
            raise UsageError(
                f"no log for {name!r}",
                f"name a service ({', '.join(services) or 'none yet'}) or a process "
                f"({', '.join(processes) or 'none yet: run `devenv up` first'})",
            )
        chosen += [log for log in matches if log not in chosen]
    return chosen


def tail_lines(path: Path, count: int | None) -> list[str]:
    """The last `count` lines of a file (every line when None; none for 0 or a missing file)."""
    if count == 0 or not path.is_file():
        return []
    window = 64 * 1024
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        while True:
            start = max(0, size - window)
            handle.seek(start)
            lines = handle.read().decode(errors="replace").splitlines()
            if start > 0:
                lines = lines[1:]  # the first one is cut
            if start == 0 or (count is not None and len(lines) >= count):
                return lines if count is None else lines[-count:]
            window *= 4


def tail(path: Path, count: int = 20) -> str:
    """The last lines of a log as one string, for error messages ('' if there is none): from the last start
    marker on when there is one among them, so an earlier run's lines do not pass for this one's."""
    lines = tail_lines(path, count)
    starts = [i for i, line in enumerate(lines) if line.startswith(MARKER_PREFIX)]
    return "\n".join(lines[starts[-1] :] if starts else lines)


def line_time(line: str) -> float | None:
    """When a line was written (epoch seconds), if it says so in a format devenv knows."""
    if line.startswith("{"):
        with contextlib.suppress(ValueError, TypeError):
            record = json.loads(line)
            if isinstance(record.get("ts"), int | float):
                return float(record["ts"])
            if isinstance(record.get("time"), str):
                return _parse(record["time"][:19], "%Y-%m-%dT%H:%M:%S", record["time"].endswith("Z"))
        return None
    for pattern, fmt, utc in _TIME_FORMATS:
        match = pattern.search(line)
        if match:
            return _parse(match[1], fmt, utc)
    return None


def _parse(text: str, fmt: str, utc: bool) -> float | None:
    try:
        parsed = time.strptime(text, fmt)
    except ValueError:
        return None
    return float(timegm(parsed)) if utc else time.mktime(parsed)


def timed(lines: Iterable[str], first: float = 0.0) -> list[tuple[float, str]]:
    """Each line with its time (a line without one takes the time of the line before)."""
    current = first
    stamped = []
    for line in lines:
        current = line_time(line) or current
        stamped.append((current, line))
    return stamped


def recent(path: Path, count: int | None, since: float | None) -> list[tuple[float, str]]:
    """The last `count` lines (all when None) written at or after `since`, with their times."""
    if since is None:
        return timed(tail_lines(path, count))
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - SINCE_WINDOW_BYTES))
        lines = handle.read().decode(errors="replace").splitlines()
    kept = [(at, line) for at, line in timed(lines) if at >= since]
    return kept if count is None else kept[-count:] if count else []


def prune_stopped_tasks(logs_dir: Path, running: set[str], keep: int = KEEP_STOPPED_TASKS) -> list[Path]:
    """Delete the logs of stopped tasks beyond the `keep` most recent per service; returns what went.
    `running` names the processes alive now (never deleted)."""
    stopped: dict[str, list[Path]] = {}
    for path in logs_dir.glob("*.log") if logs_dir.is_dir() else []:
        service = service_of(path.stem)
        if service is not None and path.stem not in running:
            stopped.setdefault(service, []).append(path)
    removed = []
    for paths in stopped.values():
        paths.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for path in paths[keep:]:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
