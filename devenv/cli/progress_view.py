"""How `up` and `deploy` show their steps (devenv.runtime.progress) and the services each step started.

On a terminal: one live block redrawn in place (rich Live), a spinner on the running step. Anywhere else
(a pipe, CI, the detached supervisor's log): one line per change. Both are fed the same document, the
supervisor's state (`Supervisor.snapshot()` in-process, the state file from another process), so `up`
and `up -d` look the same. Data (details, names) is printed as text, never as markup.

With `verbose_log`, new lines of that log (the CDK CLI's) are printed above the block as they come.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from devenv.cli.application import Application

Snapshot = Callable[[], dict[str, Any]]
REFRESH_S = 0.1
ICONS = {
    "pending": Text("·", style="dim"),
    "done": Text("✓", style="green"),
    "failed": Text("✗", style="red"),
}
SERVICE_ICONS = {"running": ("✓", "green"), "failed": ("✗", "red"), "restarting": ("↻", "yellow")}


def step_services(snapshot: dict[str, Any], step: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The services `step` started: those whose (last) start came after it began and before the next
    step began, in start order."""
    began = step.get("started_at")
    if began is None:
        return []
    later = [
        s["started_at"]
        for s in snapshot.get("progress") or []
        if s.get("started_at") is not None and s["started_at"] > began
    ]
    until = min(later, default=float("inf"))
    found = [
        (name, svc)
        for name, svc in (snapshot.get("services") or {}).items()
        if svc.get("started_at") is not None and began <= svc["started_at"] < until
    ]
    return sorted(found, key=lambda item: item[1]["started_at"])


def _elapsed(step: dict[str, Any], now: float) -> str:
    if step.get("took_s") is not None:
        return f"{step['took_s']:.1f} s"
    if step.get("started_at") is not None:
        return f"{max(0.0, now - step['started_at']):.1f} s"
    return ""


def _service_line(services: list[tuple[str, dict[str, Any]]]) -> Text:
    line = Text()
    for index, (name, svc) in enumerate(services):
        if index:
            line.append("  ")
        icon, style = SERVICE_ICONS.get(svc.get("state", ""), ("…", "dim"))
        line.append(f"{icon} ", style=style)
        line.append(name)
        if svc.get("state") == "running" and svc.get("ready_after_s") is not None:
            line.append(f" {svc['ready_after_s']:.2f} s", style="dim")
    return line


def render(snapshot: dict[str, Any], now: float | None = None) -> RenderableType:
    """The steps as a table: icon, name, detail (and the step's services), time."""
    now = time.time() if now is None else now
    steps = snapshot.get("progress") or []
    if not steps:
        return Text("starting the supervisor…", style="dim")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=1)
    grid.add_column(style="bold", min_width=9)
    grid.add_column(ratio=1)
    grid.add_column(justify="right", style="dim", min_width=7)
    for step in steps:
        icon: RenderableType = (
            Spinner("dots", style="cyan") if step["state"] == "running" else ICONS[step["state"]]
        )
        detail = Text(step.get("detail") or "", style="red" if step["state"] == "failed" else "")
        services = step_services(snapshot, step)
        if services:
            detail = Text("\n").join([detail, _service_line(services)]) if detail else _service_line(services)
        grid.add_row(icon, step["name"], detail, _elapsed(step, now))
    return grid


def transitions(previous: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Plain lines for what changed between two snapshots: a step started, finished or failed; a
    service became ready or failed."""
    lines = []
    before = {step["name"]: step for step in previous.get("progress") or []}
    for step in current.get("progress") or []:
        old = before.get(step["name"], {})
        if step["state"] == old.get("state"):
            continue
        if step["state"] == "running":
            lines.append(f"… {step['name']}: {step.get('detail') or ''}".rstrip(": "))
        elif step["state"] in ("done", "failed"):
            mark = "✓" if step["state"] == "done" else "✗"
            lines.append(f"{mark} {step['name']}: {step.get('detail') or ''} ({_elapsed(step, 0)})")
    old_services = previous.get("services") or {}
    for name, svc in (current.get("services") or {}).items():
        state = svc.get("state")
        if state == (old_services.get(name) or {}).get("state"):
            continue
        if state == "running" and svc.get("ready_after_s") is not None:
            lines.append(f"  ✓ {name} ready in {svc['ready_after_s']:.2f} s")
        elif state in ("failed", "restarting"):
            lines.append(f"  {SERVICE_ICONS[state][0]} {name} {state}")
    return lines


class _LogFollower:
    """New lines of a log file since it was opened (the file may not exist yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.partial = ""

    def new_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        self.offset += len(chunk)
        *complete, self.partial = (self.partial + chunk.decode(errors="replace")).split("\n")
        return complete


@contextlib.contextmanager
def showing(
    console: Console,
    snapshot: Snapshot,
    verbose_log: Path | None = None,
    timestamps: bool = False,
) -> Iterator[None]:
    """Show the progress of `snapshot` while the body runs; the final state stays on screen."""
    follower = _LogFollower(verbose_log) if verbose_log is not None else None
    live = console.is_terminal
    stop = threading.Event()
    last: dict[str, Any] = {}

    def say(line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S ") if timestamps else ""
        console.print(stamp + line, markup=False, highlight=False, emoji=False, soft_wrap=True)

    def tick() -> None:
        nonlocal last
        if follower is not None:
            for line in follower.new_lines():
                console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
        if not live:
            current = snapshot()
            for line in transitions(last, current):
                say(line)
            last = current

    def loop() -> None:
        while not stop.wait(REFRESH_S):
            tick()

    thread = threading.Thread(target=loop, name="progress-view", daemon=True)
    display = (
        Live(console=console, get_renderable=lambda: render(snapshot()), refresh_per_second=8)
        if live
        else contextlib.nullcontext()
    )
    with display:
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            tick()


def for_app(
    app: Application, snapshot: Snapshot, verbose_log: Path | None = None, timestamps: bool = False
) -> contextlib.AbstractContextManager[None]:
    """`showing` on the app's progress console (stderr with --output json); nothing with --quiet."""
    if app.quiet:
        return contextlib.nullcontext()
    return showing(app.progress_console, snapshot, verbose_log, timestamps)
