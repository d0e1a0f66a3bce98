"""Failover experiments against the session's shared local stack (tests/conftest.py; fault hold 2 s).

Every shipped experiment runs with its own criteria and a short background load; then a deliberately
broken system (the dispatcher stopped for good) fails the data-loss check with the missing ids named; a
hypothesis that does not hold aborts before anything is injected; rollbacks run after a failing action.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.failover import experiment as ex
from devenv.failover import runner
from devenv.failover.actions import run_action
from devenv.failover.target import Target, connect
from devenv.runtime.state import StateDir
from devenv.services import faultproxy
from devenv.targets.endpoints import Target as Where
from tests.devenv.failover.test_experiment_files import EXPERIMENTS_DIR
from tests.local_stack import Stack

pytestmark = pytest.mark.slow

SHORT_LOAD_S = 12  # the experiments' own criteria, with a short background load (fault injected at <= 4 s)
API_KEY = "sk-devenv-mock-upstream"


@pytest.fixture
def target(stack: Stack) -> Target:
    return connect(Where.local, StateDir(Path(stack.env["DEVENV_STATE_DIR"])), None, None, None)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


def run(experiment: ex.Experiment, target: Target, run_dir: Path) -> dict[str, Any]:
    journal = runner.run(experiment, target, run_dir, lambda m: print(m, flush=True), API_KEY)
    print(json.dumps({k: journal[k] for k in list(journal)[:14]}, default=str), flush=True)
    return journal


def write(tmp_path: Path, body: dict[str, object]) -> ex.Experiment:
    path = tmp_path / f"{body['name']}.yaml"
    path.write_text(yaml.safe_dump(body))
    return ex.load_file(path)


def run_cli(stack: Stack, name: str, run_dir: Path) -> dict[str, Any]:
    """`devenv failover NAME --output json`: stdout holds only the journal, the exit code is the verdict's."""
    done = stack.devenv(
        "failover", name, "--duration", str(SHORT_LOAD_S), "--output", "json", "--report-dir", str(run_dir),
        timeout=240,
    )  # fmt: skip
    journal: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == journal["exit_code"], done.stderr
    [folder] = run_dir.iterdir()
    for path in folder.iterdir():
        path.rename(run_dir / path.name)
    return journal


@pytest.mark.parametrize("name", sorted(ex.discover(EXPERIMENTS_DIR)))
def test_each_shipped_experiment_passes_locally(
    name: str,
    stack: Stack,
    target: Target,
    run_dir: Path,
) -> None:
    if name == "dispatcher-kill":  # one of them through the command line
        journal = run_cli(stack, name, run_dir)
    else:
        journal = run(ex.with_overrides(ex.find(name, EXPERIMENTS_DIR), SHORT_LOAD_S, []), target, run_dir)
    assert list(journal)[:11] == [
        "experiment", "target", "verdict", "failed_requests", "failure_rate", "recovery_s",
        "p99_ms_during", "p99_ms_after", "lost_events", "duplicate_events", "missing_ids",
    ]  # fmt: skip
    assert journal["verdict"] == "pass", (journal["breaches"], journal["errors"])
    assert journal["exit_code"] == 0
    assert journal["lost_events"] == 0 and journal["missing_ids"] == []
    assert isinstance(journal["requests"], int) and journal["requests"] > 50
    assert (run_dir / "timeline.png").stat().st_size > 10_000
    assert json.loads((run_dir / "journal.json").read_text())["verdict"] == "pass"
    link = journal["dashboard"]  # the page `up` serves, at the run's window
    page = f"http://127.0.0.1:{stack.env['DEVENV_DASHBOARD_PORT']}/"
    assert link["url"] == f"{page}?start={link['start']}&end={link['end']}" and link["start"] < link["end"]
    steps = journal["steps"]
    assert isinstance(steps, list) and [s["status"] for s in steps if s["phase"] == "method"]
    if name == "redis-reboot":  # a one-node group cannot test_failover: skipped with AWS's reason
        [skipped] = [s for s in steps if s["status"] == "skipped"]
        assert "InvalidReplicationGroupState" in skipped["detail"]
    if name == "db-failover":  # one writer: the cluster failover is refused and the writer rebooted
        assert "InvalidDBClusterStateFault" in steps[0]["detail"] and "rebooted" in steps[0]["detail"]
    if name == "postgres-cut":
        assert_unhealthy_hosts_alarm_history(stack, journal)


def assert_unhealthy_hosts_alarm_history(stack: Stack, journal: dict[str, Any]) -> None:
    """The dead targets of postgres-cut, read back from CloudWatch itself: the UnhealthyHosts alarm went
    OK -> ALARM -> OK during the run, each change for its threshold, and its TreatMissingData
    (notBreaching, read from the alarm) held: never INSUFFICIENT_DATA, missing datapoints (if a sample
    came late) counted as not breaching."""
    cloudwatch = stack.client("cloudwatch")
    [alarm] = [
        a
        for page in cloudwatch.get_paginator("describe_alarms").paginate()
        for a in page["MetricAlarms"]
        if "UnhealthyHosts" in a["AlarmName"]
    ]
    assert alarm["TreatMissingData"] == "notBreaching"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0.0, "GreaterThanThreshold")
    started = dt.datetime.fromisoformat(journal["started_at"])
    history = cloudwatch.describe_alarm_history(
        AlarmName=alarm["AlarmName"],
        HistoryItemType="StateUpdate",
        StartDate=started,
        ScanBy="TimestampAscending",
    )["AlarmHistoryItems"]
    changes = [json.loads(item["HistoryData"]) for item in history]
    states = [changes[0]["oldState"]["stateValue"]] + [c["newState"]["stateValue"] for c in changes]
    assert states == ["OK", "ALARM", "OK"], [c["newState"]["stateReason"] for c in changes]
    fired, cleared = (c["newState"]["stateReason"] for c in changes)
    periods = alarm["EvaluationPeriods"]
    assert fired.startswith(f"Threshold Crossed: {periods} out of the last {periods} datapoints [")
    assert "were greater than the threshold (0.0)" in fired
    assert "was not greater than the threshold (0.0)" in cleared or "were not greater than" in cleared
    for reason in (fired, cleared):
        assert "treated as [Breaching]" not in reason  # notBreaching: a missing datapoint never breaches
    checks = {c["rule"]: c for c in journal["alarm_checks"]}
    assert checks["reaches ALARM"]["ok"] and checks["back to OK within 720 s"]["state"] == "OK"


def test_a_stopped_dispatcher_fails_the_data_loss_check_naming_the_missing_ids(
    stack: Stack,
    target: Target,
    run_dir: Path,
    tmp_path: Path,
) -> None:
    experiment = write(
        tmp_path,
        {
            "name": "no-dispatcher",
            "load": {"rate": 10, "duration_s": 6, "inject_at_s": 2},
            "setup": [{"action": "ecs.set_desired_count", "service": "dispatcher", "count": 0}],
            "method": [{"action": "wait", "seconds": 1}],
            "criteria": {"max_lost_events": 0},
            "audit": {"catch_up_timeout_s": 4},
        },
    )
    try:
        journal = run(experiment, target, run_dir)
        # checked on their own, while the dispatcher is still stopped: the named ids have no event
        for request_id in journal["missing_ids"][-3:]:
            assert target.management.audit_page(1, 10, request_id=request_id)["events"] == []
    finally:
        run_action(target, "ecs.set_desired_count", {"service": "dispatcher", "count": 1})
    assert journal["verdict"] == "fail" and journal["exit_code"] == 1
    timeline = json.loads((run_dir / "timeline.json").read_text())
    answered = sorted(r["request_id"] for r in timeline["requests"] if r["answered"])
    assert len(answered) > 30
    # a stopping dispatcher may still deliver the first few; every later event is missing, and named
    missing = journal["missing_ids"]
    assert set(missing) <= set(answered) and len(missing) >= len(answered) - 10
    assert missing == answered[len(answered) - len(missing) :]
    assert journal["lost_events"] == len(missing)
    assert f"lost events {len(missing)} > 0" in journal["breaches"]


def test_a_hypothesis_failing_before_injection_aborts_with_nothing_injected(
    stack: Stack,
    target: Target,
    run_dir: Path,
    tmp_path: Path,
) -> None:
    experiment = write(
        tmp_path,
        {
            "name": "impossible",
            "hypothesis": {"max_p99_ms": 0.001},  # no request is that fast
            "load": {"rate": 10, "duration_s": 6, "inject_at_s": 2},
            "method": [{"action": "ecs.stop_task", "service": "proxy"}],
        },
    )
    before = stack.proxy_tasks()
    journal = run(experiment, target, run_dir)
    assert journal["verdict"] == "aborted" and journal["exit_code"] == 2
    assert any("p99" in b for b in journal["breaches"])
    assert journal["injected_at_s"] is None and journal["steps"] == []
    assert stack.proxy_tasks() == before  # the task was not stopped


def test_rollbacks_run_after_a_failing_action(target: Target, run_dir: Path, tmp_path: Path) -> None:
    experiment = write(
        tmp_path,
        {
            "name": "breaks-midway",
            "load": {"rate": 10, "duration_s": 6, "inject_at_s": 2},
            "method": [
                {"action": "network.latency", "endpoint": "aurora", "ms": 50},  # until cleared
                {"action": "rds.reboot_db_instance", "instance": "no-such-instance"},
            ],
            "rollbacks": [{"action": "network.clear", "endpoint": "aurora"}],
        },
    )
    journal = run(experiment, target, run_dir)
    assert journal["verdict"] == "error" and journal["exit_code"] == 2
    assert any("DBInstanceNotFound" in e for e in journal["errors"])
    phases = [(s["phase"], s["action"], s["status"]) for s in journal["steps"]]
    assert phases == [
        ("method", "network.latency", "done"),
        ("method", "rds.reboot_db_instance", "error"),
        ("rollback", "network.clear", "done"),
    ]
    assert faultproxy.status(target.fault_proxy("aurora"))["fault"] is None


REDIS_UNREACHABLE: list[
    dict[str, Any]
] = [  # new connections refused for a while, open ones closed: /health turns "degraded"
    {"action": "network.refuse", "endpoint": "elasticache", "seconds": 4},
    {"action": "network.cut", "endpoint": "elasticache"},
]


def test_a_fault_still_settling_delays_the_run_instead_of_aborting_it(
    target: Target, run_dir: Path, tmp_path: Path
) -> None:
    experiment = write(
        tmp_path,
        {
            "name": "settles-first",
            "load": {"rate": 10, "duration_s": 6, "inject_at_s": 2},
            "setup": REDIS_UNREACHABLE,
            "method": [{"action": "wait", "seconds": 1}],
            "rollbacks": [{"action": "network.clear", "endpoint": "elasticache"}],
            "audit": {"enabled": False},
        },
    )
    journal = run(experiment, target, run_dir)
    assert journal["verdict"] == "pass", (journal["breaches"], journal["errors"])
    assert journal["settled_after_s"] is not None and journal["settled_after_s"] >= 1


def test_a_steady_state_not_reached_in_time_aborts_naming_the_probe(
    target: Target, run_dir: Path, tmp_path: Path
) -> None:
    experiment = write(
        tmp_path,
        {
            "name": "never-settles",
            "hypothesis": {"settle_timeout_s": 1.5, "settle_hold_s": 0.5},
            "load": {"rate": 10, "duration_s": 6, "inject_at_s": 2},
            "setup": [{**REDIS_UNREACHABLE[0], "seconds": 30}, REDIS_UNREACHABLE[1]],
            "method": [{"action": "ecs.stop_task", "service": "proxy"}],
            "rollbacks": [{"action": "network.clear", "endpoint": "elasticache"}],
        },
    )
    journal = run(experiment, target, run_dir)
    assert journal["verdict"] == "aborted" and journal["exit_code"] == 2
    [breach] = journal["breaches"]
    assert "did not hold within 1.5 s" in breach and "/health -> 200 degraded" in breach
    assert journal["settled_after_s"] is None and journal["injected_at_s"] is None
    assert [s["phase"] for s in journal["steps"]] == ["setup", "setup", "rollback"]
    assert faultproxy.status(target.fault_proxy("elasticache"))["fault"] is None
