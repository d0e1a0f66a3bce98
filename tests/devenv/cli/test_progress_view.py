"""What `up` draws from the supervisor's state: each step with the services it started, data printed as
written (no markup, no emoji), and one log line per change off a terminal."""

from __future__ import annotations

import io
from typing import Any

import pytest

from devenv.cli.application import console
from devenv.cli.progress_view import render, step_services, transitions

T0 = 1_800_000_000.0


def step(
    name: str, state: str, began: float | None, took: float | None = None, detail: str = ""
) -> dict[str, Any]:
    return {"name": name, "state": state, "detail": detail, "started_at": began, "took_s": took}


def service(state: str, started: float, ready_after: float | None = 0.5) -> dict[str, Any]:
    return {"state": state, "started_at": started, "ready_after_s": ready_after}


SNAPSHOT: dict[str, Any] = {
    "progress": [
        step("services", "done", T0, 1.0, "2 ready"),
        step("synth", "done", T0 + 1.0, 9.0, "synthesized (abc)"),
        step("realize", "running", T0 + 10.0, None, "the ECS tasks"),
    ],
    "services": {
        "postgres": service("running", T0 + 0.9),
        "redis": service("running", T0 + 0.1),
        "alb": service("running", T0 + 10.2),
        "proxy-1a2b3c4d": service("starting", T0 + 10.5, None),
    },
}


def test_each_service_is_shown_under_the_step_that_started_it() -> None:
    services, synth, realize = SNAPSHOT["progress"]
    assert [name for name, _ in step_services(SNAPSHOT, services)] == ["redis", "postgres"]
    assert step_services(SNAPSHOT, synth) == []
    assert [name for name, _ in step_services(SNAPSHOT, realize)] == ["alb", "proxy-1a2b3c4d"]


def test_details_print_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # the pipe width, whatever the caller's terminal
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:llm-proxy/x"
    snapshot = {"progress": [step("deploy", "failed", T0, 2.0, f"[bold]{arn}[/bold] failed")], "services": {}}
    out = io.StringIO()
    console(out).print(render(snapshot, now=T0 + 3))
    text = out.getvalue()
    assert f"[bold]{arn}[/bold] failed" in text and "㊙" not in text
    assert "✗ deploy" in text and "2.0 s" in text


def test_a_change_is_one_line_and_no_change_none() -> None:
    before = {"progress": [step("services", "running", T0), step("synth", "pending", None)], "services": {}}
    after = SNAPSHOT
    lines = transitions(before, after)
    assert "✓ services: 2 ready (1.0 s)" in lines
    assert "✓ synth: synthesized (abc) (9.0 s)" in lines
    assert "… realize: the ECS tasks" in lines
    assert "  ✓ alb ready in 0.50 s" in lines and not any("proxy-1a2b3c4d" in line for line in lines)
    assert transitions(after, after) == []
