"""The verdict logic and the counts: thresholds, windows of samples, summaries, ramps and profiles."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from devenv.loadtest import thresholds as th
from devenv.loadtest.figures import Sample, combined
from devenv.loadtest.profiles import PROFILES, parse_duration, plan, total_seconds
from devenv.loadtest.summary import RunState, build_summary

REPO_THRESHOLDS = Path(__file__).resolve().parents[2] / "loadtests" / "thresholds.yaml"


def sample(times: dict[int, int], failures: int = 0) -> Sample:
    requests = sum(times.values())
    return Sample.of(requests, failures, float(sum(k * v for k, v in times.items())), times)


def test_percentiles_follow_locusts_rule() -> None:
    s = sample({10: 90, 100: 9, 1000: 1})
    assert s.percentile(0.5) == 10
    assert s.percentile(0.89) == 10
    assert s.percentile(0.9) == 100  # Locust's rule is conservative: 90 of 100 at 10 ms is not enough
    assert s.percentile(0.95) == 100
    assert s.percentile(0.98) == 100
    assert s.percentile(0.99) == 1000
    assert s.percentile(1.0) == 1000
    figures = s.figures(seconds=10)
    assert figures["requests"] == 100 and figures["rps"] == 10
    assert figures["avg_ms"] == pytest.approx((900 + 900 + 1000) / 100)
    assert figures["max_ms"] == 1000
    assert Sample().figures(1)["p99_ms"] == 0 and Sample().figures(1)["error_rate"] == 0


def test_a_window_is_the_difference_of_two_snapshots() -> None:
    earlier = sample({10: 50})
    later = earlier.plus(sample({500: 10}, failures=2))
    window = later.minus(earlier)
    assert (window.requests, window.failures) == (10, 2)
    assert window.response_times == Counter({500: 10})
    assert window.figures(2)["p50_ms"] == 500 and window.figures(2)["rps"] == 5
    assert combined([earlier, window]).requests == 60


def test_thresholds_file_merges_profile_over_default(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "default:\n  total: {p95_ms: 100, error_rate: 0.01}\n  models: {p95_ms: 50}\n"
        "profiles:\n  smoke:\n    total: {p95_ms: 2000, min_rps: 3}\n"
    )
    assert th.load(path, "smoke") == {
        "total": {"p95_ms": 2000, "error_rate": 0.01, "min_rps": 3},
        "models": {"p95_ms": 50},
    }
    assert th.load(path, "step")["total"] == {"p95_ms": 100, "error_rate": 0.01}
    table = th.with_overrides(th.load(path, None), ["total.p95_ms=7", "chat: cache miss.p99_ms=300"])
    assert table["total"]["p95_ms"] == 7 and table["chat: cache miss"] == {"p99_ms": 300}
    out = tmp_path / "effective.yaml"
    th.dump(table, out)
    assert th.load(out, "anything") == table


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default:\n  total: {p95: 1}\n", "unknown metric in t.yaml: default.total.p95"),
        ("default:\n  total: {p95_ms: fast}\n", "must be a number"),
        ("default:\n  total: {error_rate: 2}\n", "out of range"),
        ("defaults: {}\n", "only the keys `default` and `profiles`"),
        ("default: [1]\n", "must be a mapping"),
        ("default: {total: {p95_ms: 1}\n", "cannot parse"),
    ],
)
def test_bad_threshold_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(th.ThresholdError, match=message.replace("[", r"\[")):
        th.load(path, None)


@pytest.mark.parametrize(
    "text", ["total.p95_ms", "p95_ms=3", "total.p95_ms=abc", "total.nope=1", ".p95_ms=1"]
)
def test_bad_overrides_are_refused(text: str) -> None:
    with pytest.raises(th.ThresholdError):
        th.parse_override(text)


def test_the_repository_thresholds_load_for_every_profile() -> None:
    for profile in PROFILES:
        assert th.thresholds(th.load(REPO_THRESHOLDS, profile))


def test_evaluate_names_each_breach() -> None:
    rules = th.thresholds(
        {
            "total": {"p95_ms": 100, "error_rate": 0.01, "min_rps": 50},
            "embeddings": {"p99_ms": 10, "min_requests": 1},
        }
    )
    figures = {"total": sample({50: 96, 200: 4}, failures=1).figures(seconds=1)}
    checks = th.evaluate(rules, figures)
    by_metric = {(c.threshold.scope, c.threshold.metric): c for c in checks}
    assert by_metric[("total", "p95_ms")].ok  # p95 = 50 with 4 of 100 at 200 ms
    assert by_metric[("total", "error_rate")].ok  # exactly 0.01 is allowed
    assert by_metric[("total", "min_rps")].ok
    # a scope that saw no request is "not measured", and fails only a min_requests rule
    assert by_metric[("embeddings", "p99_ms")].ok and not by_metric[("embeddings", "p99_ms")].measured
    assert not by_metric[("embeddings", "min_requests")].ok
    assert [c.line for c in th.breached(checks)] == [
        "embeddings requests: not measured (no request of this type), limit 1"
    ]
    slow = th.evaluate(rules, {"total": sample({300: 10}, failures=5).figures(seconds=1)})
    lines = [c.line for c in th.breached(slow)]
    assert lines == [
        "total p95_ms 300 (above the limit; total p95_ms <= 100)",
        "total error_rate 0.5 (above the limit; total error_rate <= 0.01)",
        "total rps 10 (below the limit; total rps >= 50)",
        "embeddings requests: not measured (no request of this type), limit 1",
    ]


def state_with(
    rules: dict[str, dict[str, float]], samples: dict[str, Sample], profile: str = "smoke"
) -> RunState:
    state = RunState(
        rules=th.thresholds(rules),
        sampler=lambda: samples,
        metric_only=frozenset({"chat stream: first token"}),
        profile=profile,
    )
    state.started_at, state.ended_at = 1000.0, 1010.0
    return state


def test_summary_counts_leave_metrics_out_of_the_totals() -> None:
    samples = {
        "chat: cache miss": sample({20: 80}, failures=2),
        "chat stream": sample({100: 20}),
        "chat stream: first token": sample({5: 20}),
    }
    state = state_with({"total": {"error_rate": 0.05}, "chat stream: first token": {"p95_ms": 10}}, samples)
    summary = build_summary(
        state, target="http://t", mode="proxy", samples=samples, methods={"chat stream": "POST"}, failures=[]
    )
    assert summary["verdict"] == "pass" and summary["exit_code"] == 0
    assert summary["requests"] == 100 and summary["failures"] == 2
    assert summary["rps"] == 10.0 and summary["error_rate"] == 0.02
    assert summary["p50_ms"] == 20 and summary["p99_ms"] == 100
    assert summary["request_types"]["chat stream: first token"]["metric_only"] is True
    assert summary["request_types"]["chat stream"]["method"] == "POST"
    assert summary["breached"] == []
    failing = state_with({"total": {"error_rate": 0.01}}, samples)
    result = build_summary(failing, target="t", mode="proxy", samples=samples, methods={}, failures=[])
    assert (result["verdict"], result["exit_code"]) == ("fail", 1)
    assert result["breached"] == ["total error_rate 0.02 (above the limit; total error_rate <= 0.01)"]


def test_set_up_errors_and_empty_runs_are_errors() -> None:
    samples = {"models": sample({5: 3})}
    state = state_with({}, samples)
    state.setup_error = "the management API refused the token"
    summary = build_summary(state, target="t", mode="proxy", samples=samples, methods={}, failures=[])
    assert (summary["verdict"], summary["exit_code"]) == ("error", 2)
    assert summary["setup_error"] == "the management API refused the token"
    empty = build_summary(state_with({}, {}), target="t", mode="proxy", samples={}, methods={}, failures=[])
    assert empty["verdict"] == "error" and "no request completed" in empty["setup_error"]


def test_ramp_stops_at_the_first_breach_and_reports_the_best_step() -> None:
    state = state_with({"total": {"p95_ms": 100, "min_rps": 15}}, {}, profile="ramp")
    assert state.judge_stage("ramp step 1", 5, {"total": sample({10: 100}).figures(10)}, at_s=10)
    assert state.judge_stage("ramp step 2", 10, {"total": sample({50: 200}).figures(10)}, at_s=20)
    assert not state.judge_stage("ramp step 3", 15, {"total": sample({400: 250}).figures(10)}, at_s=30)
    samples = {"models": sample({10: 550})}
    summary = build_summary(state, target="t", mode="proxy", samples=samples, methods={}, failures=[])
    ramp = summary["ramp"]
    assert summary["verdict"] == "pass"
    assert (ramp["max_rps"], ramp["max_users"]) == (20.0, 10)  # step 2: 200 requests in 10 s
    assert ramp["stopped_by"]["users"] == 15 and ramp["stopped_by"]["at_s"] == 30
    assert ramp["stopped_by"]["breached"] == ["total p95_ms 400 (above the limit; total p95_ms <= 100)"]
    assert [s["ok"] for s in ramp["steps"]] == [True, True, False]
    # min_rps judges the best passing step, not each step
    slow = state_with({"total": {"p95_ms": 100, "min_rps": 50}}, {}, profile="ramp")
    slow.judge_stage("ramp step 1", 5, {"total": sample({10: 100}).figures(10)}, at_s=10)
    assert (
        build_summary(slow, target="t", mode="proxy", samples=samples, methods={}, failures=[])["verdict"]
        == "fail"
    )


def test_a_step_run_reports_each_stage_and_is_judged_as_a_whole() -> None:
    state = state_with({"total": {"p95_ms": 100}}, {}, profile="step")
    assert state.judge_stage("step 1", 10, {"total": sample({10: 100}).figures(10)}, at_s=10)
    assert not state.judge_stage("step 2", 20, {"total": sample({400: 30}).figures(10)}, at_s=20)
    assert state.judge_stage("step 3", 30, {"total": sample({20: 300}).figures(10)}, at_s=30)
    samples = {"models": sample({10: 400, 400: 10})}
    summary = build_summary(state, target="t", mode="proxy", samples=samples, methods={}, failures=[])
    assert summary["ramp"] is None
    assert [(s["label"], s["users"], s["rps"], s["ok"]) for s in summary["stages"]] == [
        ("step 1", 10, 10.0, True),
        ("step 2", 20, 3.0, False),
        ("step 3", 30, 30.0, True),
    ]
    assert summary["stages"][1]["breached"] == ["total p95_ms 400 (above the limit; total p95_ms <= 100)"]
    assert summary["verdict"] == "pass"  # the whole run's p95 held: a stage's breach is reported, not fatal


def test_profiles_plan_their_stages() -> None:
    smoke = plan("smoke")
    assert [(s.end_s, s.users) for s in smoke] == [(20, 5)]
    step = plan("step", users=40, duration_s=80)
    assert [(s.end_s, s.users) for s in step] == [(20, 10), (40, 20), (60, 30), (80, 40)]
    spike = plan("spike", users=50, duration_s=100)
    assert [(s.end_s, s.users, s.label) for s in spike] == [
        (40, 10, "baseline"),
        (60, 50, "spike"),
        (100, 10, "recovery"),
    ]
    ramp = plan("ramp", users=100, duration_s=50)
    assert [s.users for s in ramp] == [20, 40, 60, 80, 100] and total_seconds(ramp) == 50
    assert total_seconds(plan("soak", duration_s=600)) == 600
    short_steps = plan("ramp", users=6, duration_s=6, step_s=2)
    assert [(s.end_s, s.users) for s in short_steps] == [(2, 2), (4, 4), (6, 6)]
    with pytest.raises(ValueError, match="unknown profile"):
        plan("tsunami")
    with pytest.raises(ValueError, match="at least 1"):
        plan("smoke", users=0)


@pytest.mark.parametrize(
    ("text", "seconds"), [("20", 20), ("20s", 20), ("5m", 300), ("1h30m", 5400), ("2m30s", 150)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "0", "0s", "m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
