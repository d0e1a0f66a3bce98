"""The steps of a long operation (`up`, `deploy`) as data: each pending -> running -> done or failed,
with a one-line detail and its time.

Why data and not printing: the same steps are drawn by a live display in the foreground, read back from
the state file by `up -d` (which watches a supervisor in another process), and written as plain lines to
a log. `on_change` receives the whole list after every change.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

StepState = Literal["pending", "running", "done", "failed"]


@dataclass
class Step:
    """One step; a display lists under it the supervised processes that started while it ran."""

    name: str
    state: StepState = "pending"
    detail: str = ""
    started_at: float | None = None  # time.time(), so another process can show the elapsed time
    took_s: float | None = None


class Progress:
    """Named steps in a fixed order; thread-safe (the realizer's threads report too)."""

    def __init__(
        self, names: Sequence[str], on_change: Callable[[list[dict[str, Any]]], None] | None = None
    ) -> None:
        self._steps = {name: Step(name) for name in names}
        self._lock = threading.Lock()
        self._on_change = on_change or (lambda steps: None)

    def start(self, name: str, detail: str = "") -> None:
        """The step runs from now (a step already running keeps its start and takes the new detail)."""
        with self._lock:
            step = self._steps[name]
            if step.state != "running":
                step.state, step.started_at = "running", time.time()
            step.detail = detail
        self._changed()

    def update(self, name: str, detail: str) -> None:
        with self._lock:
            if self._steps[name].detail == detail:
                return
            self._steps[name].detail = detail
        self._changed()

    def extend(self, name: str, more: str) -> None:
        """Add `more` to the step's detail: a later fact about a step keeps what the step said (a
        display that reads the detail only after the addition still shows both)."""
        with self._lock:
            step = self._steps[name]
            step.detail = f"{step.detail} · {more}" if step.detail else more
        self._changed()

    def done(self, name: str, detail: str | None = None) -> None:
        self._finish(name, "done", detail)

    def fail(self, name: str, detail: str) -> None:
        self._finish(name, "failed", detail)

    def fail_running(self, detail: str) -> None:
        """Mark whichever step is running as failed (an error escaped from it)."""
        running = [s.name for s in self._steps.values() if s.state == "running"]
        for name in running:
            self.fail(name, detail)

    @contextlib.contextmanager
    def recording_failure(self) -> Iterator[None]:
        """Whatever escapes the body (an error, Ctrl-C) marks the running step failed, then goes on."""
        try:
            yield
        except BaseException as exc:
            self.fail_running((str(exc).splitlines() or [type(exc).__name__])[0])
            raise

    def as_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(step) for step in self._steps.values()]

    def _finish(self, name: str, state: StepState, detail: str | None) -> None:
        with self._lock:
            step = self._steps[name]
            if step.started_at is None:
                step.started_at = time.time()
            step.state = state
            step.took_s = time.time() - step.started_at
            if detail is not None:
                step.detail = detail
        self._changed()

    def _changed(self) -> None:
        self._on_change(self.as_json())
