"""The Application object every command receives: settings, consoles, and how to print results."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TextIO

import typer
from rich.console import Console
from rich.text import Text

from devenv.config import Settings
from devenv.errors import DevenvError


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


# Tables written to a pipe or a file (no terminal to size them by) are laid out this wide, not rich's 80.
PIPE_WIDTH = 160


def console(stream: TextIO) -> Console:
    """A console on `stream` that prints `:name:` as written (no emoji), `PIPE_WIDTH` wide off a terminal
    unless COLUMNS says otherwise."""
    width = None if stream.isatty() or "COLUMNS" in os.environ else PIPE_WIDTH
    return Console(file=stream, emoji=False, width=width)


@dataclass
class Application:
    """Passed down to every command: the merged settings and where to write.

    With `--output json`, stdout holds only the JSON document; progress and messages go to stderr.
    The consoles never turn `:name:` into an emoji (a Secrets Manager ARN holds `:secret:`); data goes
    out as `rich.text.Text` or with `markup=False`, so no bracket in it is taken for markup.
    """

    settings: Settings
    output: OutputFormat = OutputFormat.text
    quiet: bool = False
    out: Console = field(default_factory=lambda: console(sys.stdout))
    err: Console = field(default_factory=lambda: console(sys.stderr))

    @property
    def json_output(self) -> bool:
        return self.output is OutputFormat.json

    @property
    def progress_console(self) -> Console:
        """Where progress goes: stderr when stdout is reserved for JSON."""
        return self.err if self.json_output else self.out

    def info(self, message: str) -> None:
        if not self.quiet:
            self.progress_console.print(message)

    def warn(self, message: str) -> None:
        """One line on stderr, even with --quiet or --output json: a warning is never silent (soft wrap:
        a path in it stays whole in a log or a pipe)."""
        self.err.print(Text.assemble(("warning:", "yellow"), " ", message), soft_wrap=True)

    def emit_json(self, document: Any) -> None:
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        sys.stdout.flush()


def application(
    ctx: typer.Context, output: OutputFormat = OutputFormat.text, quiet: bool = False
) -> Application:
    """The Application for a command, with that command's output choices applied."""
    app_obj: Application = ctx.obj
    app_obj.output = output
    app_obj.quiet = quiet
    return app_obj


def print_error(exc: DevenvError) -> None:
    """A DevenvError as the user reads it on stderr: its message and its fix (soft wrap: a path or an ARN
    in the message stays whole in a log or a pipe; a terminal wraps it)."""
    err = Console(stderr=True, emoji=False, highlight=False, soft_wrap=True)
    err.print(Text.assemble(("error:", "bold red"), " ", exc.message))
    if exc.hint:
        err.print(Text.assemble(("fix:", "yellow"), " ", exc.hint))
