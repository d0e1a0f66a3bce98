"""A run's state while Locust runs, and the summary document (verdict, figures, breaches) it ends with.

The locustfile fills a `RunState` (registered with `start_run`, read by the load shape for the ramp)
and calls `build_summary` when Locust quits. Exit codes: 0 pass, 1 a threshold breached, 2 set-up error,
9 degraded: a load generator worker died mid-run (`degrade`), so the load was not the load planned.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devenv.loadtest.figures import Sample, combined
from devenv.loadtest.thresholds import TOTAL, Check, Threshold, breached, evaluate, window_rules

EXIT_CODES = {"pass": 0, "fail": 1, "error": 2, "degraded": 9}
SUMMARY_FILE = "summary.json"
TIMELINE_FILE = "timeline.json"


@dataclass
class StageResult:
    """One stage of a multi-stage profile (step, spike, ramp), judged on its own requests."""

    label: str
    users: int
    figures: dict[str, float]
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return not breached(self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "users": self.users,
            "rps": round(self.figures["rps"], 2),
            "p95_ms": self.figures["p95_ms"],
            "p99_ms": self.figures["p99_ms"],
            "error_rate": round(self.figures["error_rate"], 5),
            "ok": self.ok,
            "breached": [c.line for c in breached(self.checks)],
        }


@dataclass
class RunState:
    """What the locustfile and the load shape share inside the Locust process."""

    rules: list[Threshold]
    sampler: Callable[[], dict[str, Sample]]
    metric_only: frozenset[str] = frozenset()
    profile: str | None = None
    setup_error: str | None = None
    init_error: str | None = None  # found at start-up (bad thresholds or profile): fails every run
    started_at: float | None = None
    ended_at: float | None = None
    timeline: list[dict[str, float]] = field(default_factory=list)
    stages: list[StageResult] = field(default_factory=list)  # step, spike and ramp: one per stage
    first_breach_at_s: float | None = None
    cache: Counter[str] = field(default_factory=Counter)
    worker_requests: Counter[int] = field(default_factory=Counter)  # by worker pid, metric-only rows left out

    def samples(self) -> dict[str, Sample]:
        return self.sampler()

    def total(self, samples: dict[str, Sample]) -> Sample:
        return combined(s for name, s in samples.items() if name not in self.metric_only)

    def window_figures(
        self, now: dict[str, Sample], before: dict[str, Sample], seconds: float
    ) -> dict[str, dict[str, float]]:
        """Figures per scope for what happened between two snapshots."""
        deltas = {name: sample.minus(before.get(name, Sample())) for name, sample in now.items()}
        figures = {name: d.figures(seconds) for name, d in deltas.items() if d.requests > 0}
        figures[TOTAL] = self.total(deltas).figures(seconds)
        return figures

    def judge_stage(self, label: str, users: int, figures: dict[str, dict[str, float]], at_s: float) -> bool:
        """Record one finished stage with its window thresholds; False when it broke one (a ramp stops
        there; step and spike report it and run on, judged as a whole)."""
        stage = StageResult(label, users, figures[TOTAL], evaluate(window_rules(self.rules), figures))
        self.stages.append(stage)
        if not stage.ok and self.first_breach_at_s is None:
            self.first_breach_at_s = at_s
        return stage.ok


_current: RunState | None = None


def start_run(state: RunState) -> RunState:
    global _current
    _current = state
    return state


def current_run() -> RunState | None:
    return _current


def _rounded(figures: dict[str, float]) -> dict[str, float]:
    return {
        k: (int(v) if k in ("requests", "failures") else round(v, 5 if k == "error_rate" else 2))
        for k, v in figures.items()
    }


def build_summary(
    state: RunState,
    *,
    target: str,
    mode: str,
    samples: dict[str, Sample],
    methods: dict[str, str],
    failures: list[dict[str, Any]],
) -> dict[str, Any]:
    """The summary document; its `verdict` and `exit_code` follow the thresholds (or the ramp)."""
    ended = state.ended_at or time.time()
    seconds = max(1e-9, ended - state.started_at) if state.started_at else 0.0
    total = state.total(samples)
    figures = {name: s.figures(seconds) for name, s in samples.items() if s.requests > 0}
    figures[TOTAL] = total.figures(seconds)
    ramp: dict[str, Any] | None = None
    checks: list[Check] = []
    error = state.setup_error
    if error is None and total.requests == 0:
        error = "no request completed: the target answered nothing during the run"
    if error is not None:
        verdict = "error"
    elif state.profile == "ramp":
        ramp, verdict = _ramp_result(state)
    else:
        checks = evaluate(state.rules, figures)
        verdict = "fail" if breached(checks) else "pass"
    total_figures = _rounded(figures[TOTAL])
    return {
        "verdict": verdict,
        "exit_code": EXIT_CODES[verdict],
        "setup_error": error,
        "profile": state.profile,
        "target": target,
        "mode": mode,
        "started_at": state.started_at,
        "duration_s": round(seconds, 3),
        "rps": total_figures["rps"],
        "p50_ms": total_figures["p50_ms"],
        "p95_ms": total_figures["p95_ms"],
        "p99_ms": total_figures["p99_ms"],
        "avg_ms": total_figures["avg_ms"],
        "max_ms": total_figures["max_ms"],
        "requests": total.requests,
        "failures": total.failures,
        "error_rate": total_figures["error_rate"],
        "request_types": {
            name: {
                "method": methods.get(name, ""),
                "metric_only": name in state.metric_only,
                **_rounded(figures[name]),
            }
            for name in sorted(figures)
            if name != TOTAL
        },
        "thresholds": [c.as_dict() for c in checks],
        "breached": [c.line for c in breached(checks)],
        "failure_details": failures,
        "cache": dict(state.cache),
        "ramp": ramp,
        "stages": [s.as_dict() for s in state.stages],
        "workers": [{"pid": pid, "requests": n} for pid, n in sorted(state.worker_requests.items())],
    }


def degrade(summary: dict[str, Any], lost: list[str]) -> dict[str, Any]:
    """Mark a run whose load generator lost workers: verdict `degraded` (exit 9) over pass or fail, since
    the figures cover less load than planned; the thresholds' own verdict stays in `threshold_verdict`.
    An error stays an error, with the lost workers named among its errors."""
    if not lost:
        return summary
    summary["degraded"] = lost
    if summary["verdict"] == "error":
        summary.setdefault("errors", []).extend(lost)
        return summary
    summary["threshold_verdict"] = summary["verdict"]
    summary["verdict"] = "degraded"
    summary["exit_code"] = EXIT_CODES["degraded"]
    return summary


def _ramp_result(state: RunState) -> tuple[dict[str, Any], str]:
    """A ramp passes when some step held every threshold and its RPS meets the total min_rps, if any."""
    passing = [s for s in state.stages if s.ok]
    best = max(passing, key=lambda s: s.figures["rps"], default=None)
    failed = next((s for s in state.stages if not s.ok), None)
    min_rps = next((r.limit for r in state.rules if r.scope == TOTAL and r.metric == "min_rps"), 0.0)
    max_rps = best.figures["rps"] if best else 0.0
    stopped_by = None
    if failed is not None:
        stopped_by = {
            "label": failed.label,
            "users": failed.users,
            "at_s": state.first_breach_at_s,
            "rps": round(failed.figures["rps"], 2),
            "breached": [c.line for c in breached(failed.checks)],
        }
    result = {
        "max_rps": round(max_rps, 2),
        "max_users": best.users if best else 0,
        "min_rps": min_rps,
        "steps": [s.as_dict() for s in state.stages],
        "stopped_by": stopped_by,
    }
    return result, "pass" if best is not None and max_rps >= min_rps else "fail"
