"""How a stack process (proxy, dispatcher) starts: its settings from the environment, or exit 2 naming
the problem; then its logging; then its server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Protocol, TypeVar

from llmproxy.logs import configure
from llmproxy.settings import ConfigError


class LoggedSettings(Protocol):
    @property
    def log_level(self) -> str: ...

    @property
    def log_format(self) -> str: ...


S = TypeVar("S", bound=LoggedSettings)


def start(
    name: str, description: str, argv: list[str], load: Callable[[], S], serve: Callable[[S], int]
) -> int:
    """`python -m llmproxy <name>`: takes no options (`--help` prints `description`)."""
    parser = argparse.ArgumentParser(prog=f"python -m llmproxy {name}", description=description)
    parser.parse_args(argv)
    try:
        settings = load()
    except ConfigError as exc:
        print(f"llmproxy {name}: configuration error: {exc}", file=sys.stderr)
        return 2
    configure(settings.log_level, settings.log_format)
    return serve(settings)
