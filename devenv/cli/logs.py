"""`devenv logs`: the processes' logs, by ECS service (every task of it, running or recently stopped) or by
process, prefixed and coloured per process as `docker compose logs` does; `-f` also follows tasks that
start later (a replacement after a crash, a scale-out)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import typer

from devenv.cli.application import application
from devenv.errors import NotRunningError, UsageError
from devenv.runtime import logfiles
from devenv.runtime.state import StateDir

FOLLOW_INTERVAL_S = 0.2
# `docker compose logs`' palette: one colour per process, in the order they are first printed
COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")
DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def register(app: typer.Typer) -> None:
    app.command()(logs)


def parse_since(text: str, now: float) -> float:
    """`--since`: a duration back from now (30s, 10m, 1h30m, 2d) or a local time (2026-12-02T09:30)."""
    match = DURATION.match(text.strip())
    if match and any(match.groups()):
        days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
        return now - (((days * 24 + hours) * 60 + minutes) * 60 + seconds)
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a duration nor a time",
            "write a duration back from now (30s, 10m, 1h30m, 2d) or a time (2026-12-02T09:30)",
        ) from None


class Printer:
    """Writes lines as `name | line`, the name padded and coloured per process (when wanted)."""

    def __init__(self, prefix: bool, colour: bool) -> None:
        self.prefix = prefix
        self.colour = colour
        self.width = 0
        self.colours: dict[str, str] = {}

    def add(self, names: list[str]) -> None:
        for name in names:
            self.colours.setdefault(name, COLOURS[len(self.colours) % len(COLOURS)])
        self.width = max([self.width, *map(len, names)])

    def write(self, name: str, line: str) -> None:
        if not self.prefix:
            sys.stdout.write(line + "\n")
            return
        label = f"{name:<{self.width}} |"
        if self.colour:
            label = f"\033[{self.colours[name]}m{label}\033[0m"
        sys.stdout.write(f"{label} {line}\n")


def logs(
    ctx: typer.Context,
    names: list[str] = typer.Argument(
        None,
        metavar="NAME",
        help="ECS services (all their tasks) or processes [default: all]",
        show_default=False,
    ),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="keep printing new lines, also of tasks that start later"
    ),
    lines: int = typer.Option(50, "--tail", "-n", min=0, help="how many past lines to show per process"),
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="WHEN",
        help="only lines since a duration (30s, 10m, 1h) or time (2026-12-02T09:30)",
    ),
    no_colour: bool = typer.Option(False, "--no-color", help="no colours, even on a terminal"),
) -> None:
    """Print the logs of devenv's processes (one file per process under the state dir's logs/).

    A task's process is `<service>-<task id>`; naming the service shows all its tasks, the stopped ones too
    (the last few of them are kept).
    """
    app = application(ctx)
    state = StateDir(app.settings.state_dir)
    started = time.time()
    since_s = parse_since(since, started) if since is not None else None
    available = logfiles.log_names(state.logs)
    if not available:
        raise NotRunningError("there are no logs yet", "run `devenv up` first")
    wanted = list(names or [])
    chosen = logfiles.select(available, wanted) if wanted else available
    single_process = len(wanted) == 1 and wanted[0] in available and logfiles.service_of(wanted[0]) is None
    colour = sys.stdout.isatty() and not no_colour and "NO_COLOR" not in os.environ
    printer = Printer(prefix=not single_process or len(chosen) > 1, colour=colour)
    printer.add(chosen)
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        past = [
            (at, index, name, line)
            for index, name in enumerate(chosen)
            for at, line in logfiles.recent(state.log_for(name), lines, since_s)
        ]
        for _, _, name, line in sorted(past, key=lambda item: (item[0], item[1])):
            printer.write(name, line)
        sys.stdout.flush()
        if follow:
            _follow(state, wanted, chosen, printer)


def _follow(state: StateDir, wanted: list[str], chosen: list[str], printer: Printer) -> None:
    """Print what is appended to the chosen logs, and whole logs that appear later for the same names."""
    offsets = {name: _size(state.log_for(name)) for name in chosen}
    partial: dict[str, str] = {}
    while True:
        time.sleep(FOLLOW_INTERVAL_S)
        available = logfiles.log_names(state.logs)
        current = logfiles.select(available, wanted) if wanted else available
        new = [name for name in current if name not in offsets]
        printer.add(new)
        offsets.update(dict.fromkeys(new, 0))  # a task started since: from its first line
        for name in list(offsets):
            path = state.log_for(name)
            if not path.exists():
                offsets.pop(name)  # pruned
                continue
            size = _size(path)
            if size < offsets[name]:
                offsets[name] = 0  # truncated: read again from the start
            if size == offsets[name]:
                continue
            with open(path, "rb") as handle:
                handle.seek(offsets[name])
                chunk = handle.read(size - offsets[name])
            offsets[name] = size
            *complete, partial[name] = (partial.get(name, "") + chunk.decode(errors="replace")).split("\n")
            for line in complete:
                printer.write(name, line)
        sys.stdout.flush()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
