"""Polling until a condition holds, for tests that watch real processes change state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    predicate: Callable[[], Any],
    timeout_s: float = 60.0,
    interval_s: float = 0.1,
    describe: Callable[[], Any] | None = None,
) -> Any:
    """The predicate's first truthy value; AssertionError once `timeout_s` passes without one (with what
    `describe` returns then, to show the state the condition was waiting on)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError("condition not met in time" + (f": {describe()}" if describe else ""))
