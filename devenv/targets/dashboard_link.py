"""Where a run's report points for the stack's dashboard at the run's time window: the page `devenv up`
serves (its URL with ?start=&end=, epoch seconds, which the page reads), or on AWS, where nothing serves
it, the `devenv dashboard` command that opens the same page at that window.

The window is widened to whole minutes, CloudWatch's period, so the run's first and last minute show.
"""

from __future__ import annotations

import math
from typing import Any

from devenv.runtime.state import StateDir
from devenv.services.dashboard import NAME


def served(state: StateDir) -> str | None:
    """The base URL of the dashboard page the running `devenv up` serves, or None (not running, or a
    stack started without it)."""
    if not state.supervisor_running():
        return None
    service = (state.read().get("services") or {}).get(NAME) or {}
    return service.get("url") if service.get("state") == "running" else None


def window(start: float, end: float) -> tuple[int, int]:
    """[start, end) widened to whole minutes."""
    return math.floor(start / 60) * 60, math.ceil(end / 60) * 60


def at_window(target: str, base_url: str | None, start: float, end: float) -> dict[str, Any]:
    """`url`: the served page at the window (None when none is served); `command`: the command that opens
    the page at the window on the same target."""
    first, last = window(start, end)
    return {
        "url": f"{base_url.rstrip('/')}/?start={first}&end={last}" if base_url else None,
        "command": f"devenv dashboard --target {target} --start {first} --end {last}",
        "start": first,
        "end": last,
    }


def line(link: dict[str, Any]) -> str:
    """The report's one line: the URL to open, else the command to run."""
    if link["url"]:
        return f"dashboard at this run's window: {link['url']}"
    return f"dashboard at this run's window: run `{link['command']}`"
