"""Experiment files, their schema, the figures' arithmetic and the FIS adapter: no stack needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from devenv.failover import experiment as ex
from devenv.failover import fis, measure, schema
from devenv.failover.actions import run_action
from devenv.failover.load import HealthSample, Request
from devenv.failover.runner import criteria_breaches
from devenv.failover.target import Target
from devenv.targets.endpoints import Endpoint

EXPERIMENTS_DIR = Path(__file__).resolve().parents[3] / "loadtests" / "failover"
SCHEMA = EXPERIMENTS_DIR / schema.SCHEMA_FILE
SHIPPED = {
    "rolling-deploy",
    "proxy-task-kill",
    "dispatcher-kill",
    "redis-reboot",
    "redis-cut-5s",
    "db-failover",
    "postgres-latency-200ms",
    "postgres-cut",
}
GOOD = {
    "name": "tiny",
    "load": {"rate": 5, "duration_s": 10, "inject_at_s": 2},
    "method": [{"action": "wait", "seconds": 1}],
}


def write(tmp_path: Path, body: object, name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def devenv(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEVENV_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run(
        [sys.executable, "-m", "devenv", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_shipped_experiment_loads_and_matches_the_schema() -> None:
    files = ex.discover(EXPERIMENTS_DIR)
    assert set(files) == SHIPPED
    document = json.loads(SCHEMA.read_text())
    for name, path in files.items():
        assert ex.load_file(path).name == name
        jsonschema.validate(yaml.safe_load(path.read_text()), document)


def test_the_committed_schema_is_the_models_schema() -> None:
    assert SCHEMA.read_text() == schema.render(), "run: python -m devenv.failover.schema"


def test_the_schema_rejects_an_unknown_argument_of_an_action() -> None:
    document = json.loads(SCHEMA.read_text())
    bad = {**GOOD, "method": [{"action": "ecs.stop_task", "service": "proxy", "force": True}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, document)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({**GOOD, "colour": "red"}, "colour: Extra inputs are not permitted"),
        (
            {**GOOD, "method": [{"action": "ecs.stop_task"}]},
            "method[0]: Value error, arguments of ecs.stop_task: service: Field required",
        ),
        ({**GOOD, "method": [{"action": "rm -rf"}]}, "method[0].action: Input should be"),
        (
            {**GOOD, "load": {"duration_s": 5, "inject_at_s": 8}},
            "load: Value error, inject_at_s (8.0) must be less than duration_s",
        ),
        (
            {**GOOD, "criteria": {"max_failure_rate": 2}},
            "criteria.max_failure_rate: Input should be less than or equal to 1",
        ),
        ({**GOOD, "method": []}, "method: List should have at least 1 item"),
        (
            {**GOOD, "hypothesis": {"settle_timeout_s": 1, "settle_hold_s": 3}},
            "hypothesis: Value error, settle_hold_s (3) is longer than settle_timeout_s (1)",
        ),
    ],
)
def test_a_bad_file_names_the_file_and_the_key(
    tmp_path: Path, body: dict[str, object], expected: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ex.ExperimentError) as raised:
        ex.load_file(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert expected in str(raised.value)


def test_the_name_must_match_the_file_and_yaml_must_parse(tmp_path: Path) -> None:
    with pytest.raises(ex.ExperimentError, match="must match the file name 'other'"):
        ex.load_file(write(tmp_path, GOOD, name="other"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ex.ExperimentError, match="not valid YAML"):
        ex.load_file(broken)


def test_the_cli_refuses_a_bad_file_with_exit_2_before_touching_any_target(tmp_path: Path) -> None:
    write(tmp_path, {**GOOD, "method": [{"action": "network.latency", "endpoint": "aurora", "ms": -5}]})
    done = devenv("failover", "tiny", "--experiments-dir", str(tmp_path), tmp_path=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "tiny.yaml" in done.stderr and "method[0]" in done.stderr and "ms" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state" / "failover").exists()  # no run folder: nothing ran


@pytest.mark.slow
def test_the_cli_list_and_its_usage_errors(tmp_path: Path) -> None:
    listed = devenv("failover", "list", "--output", "json", tmp_path=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["experiments"]
    assert {r["name"] for r in rows} == SHIPPED and all(r["error"] is None for r in rows)
    neither = devenv("failover", tmp_path=tmp_path)
    assert neither.returncode == 2 and "--all" in neither.stderr
    unknown = devenv("failover", "no-such-thing", tmp_path=tmp_path)
    assert unknown.returncode == 2 and "no experiment 'no-such-thing'" in unknown.stderr
    assert "devenv failover list" in unknown.stderr and "schema.json" not in unknown.stderr  # no file to fix
    bad_override = devenv("failover", "dispatcher-kill", "--tolerance", "speed=3", tmp_path=tmp_path)
    assert bad_override.returncode == 2 and "--tolerance 'speed=3'" in bad_override.stderr
    no_stack = devenv("failover", "dispatcher-kill", "--output", "json", tmp_path=tmp_path)
    assert no_stack.returncode == 2
    assert json.loads(no_stack.stdout) == {
        "verdict": "error",
        "exit_code": 2,
        "setup_error": json.loads(no_stack.stdout)["setup_error"],
    }
    assert "devenv up" in json.loads(no_stack.stdout)["setup_error"]


def request(start: float, status: int = 200, latency_ms: float = 10.0) -> Request:
    return Request(0, "id", start, start + latency_ms / 1000, status, latency_ms, status != 0)


def test_recovery_is_the_first_passing_sample_after_the_last_trouble() -> None:
    samples = [HealthSample(t / 4, not 10.0 <= t / 4 < 12.0, 200, "ok") for t in range(0, 80)]
    requests = [request(t / 10) for t in range(0, 200)] + [request(12.6, status=503)]
    recovered = measure.recovered_at(9.0, samples, requests)
    assert recovered == 12.75  # the failed request ended at 12.61; the next passing sample is at 12.75
    quiet = measure.recovered_at(9.0, [s for s in samples if s.ok], [request(1.0)])
    assert quiet == 9.0  # nothing went wrong: the hypothesis held all along


def test_no_recovery_when_the_last_health_sample_fails() -> None:
    samples = [HealthSample(float(t), t < 5, 503, "down") for t in range(10)]
    assert measure.recovered_at(4.0, samples, []) is None


def test_windows_and_p99() -> None:
    requests = [request(float(t), latency_ms=float(t)) for t in range(1, 101)]
    assert measure.p99([r.latency_ms for r in requests]) == 99.0
    win = measure.window(requests, 50.0, 60.0)
    assert (win.requests, win.failed, win.p99_ms) == (10, 0, 59.0)
    assert measure.hypothesis_breaches(None, win, 0.01, 50.0, "after") == ["after: p99 59 ms > 50 ms"]


def test_criteria_breaches_name_each_figure() -> None:
    exp = ex.Experiment.model_validate(
        {**GOOD, "criteria": {"max_failed_requests": 0, "max_recovery_s": 5, "max_lost_events": 0}}
    )
    figures = {
        "failed_requests": 3,
        "failure_rate": 0.01,
        "recovery_s": None,
        "p99_ms_during": 1.0,
        "p99_ms_after": 1.0,
    }
    breaches = criteria_breaches(exp, figures, None)
    assert breaches == [
        "failed requests 3 > 0",
        "no recovery: the hypothesis did not hold again before the load ended",
        "the data-loss check did not run",
    ]


def test_the_fis_templates_it_would_send() -> None:
    cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/llm-proxy"
    role = "arn:aws:iam::123456789012:role/fis"
    refuse = fis.template("refuse", {"endpoint": "elasticache", "seconds": 4.5}, cluster, "proxy", role, None)
    action = refuse["actions"]["fault"]
    assert action["actionId"] == "aws:ecs:task-network-blackhole-port"
    assert action["parameters"] == {
        "duration": "PT5S",
        "port": "6379",
        "protocol": "tcp",
        "trafficType": "egress",
        "useEcsFaultInjectionEndpoints": "true",
    }
    assert refuse["targets"]["tasks"]["parameters"] == {"cluster": cluster, "service": "proxy"}
    assert refuse["roleArn"] == role
    latency = fis.template("latency", {"endpoint": "aurora", "ms": 200}, cluster, "proxy", role, "db.example")
    params = latency["actions"]["fault"]["parameters"]
    assert latency["actions"]["fault"]["actionId"] == "aws:ecs:task-network-latency"
    assert (params["delayMilliseconds"], params["duration"], params["sources"]) == (
        "200",
        "PT60S",
        "db.example",
    )
    assert set(fis.NO_EQUIVALENT) == {"cut", "clear"}


def test_network_faults_on_aws_without_a_fis_role_are_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(fis.ROLE_ENV, raising=False)

    def no_client(service: str) -> None:
        raise AssertionError(f"no {service} call expected")

    target = Target("aws", Endpoint("https://alb.example", "token", "test"), no_client)
    outcome = run_action(target, "network.refuse", {"endpoint": "aurora", "seconds": 5})
    assert (outcome.status, fis.ROLE_ENV in outcome.detail) == ("skipped", True)
    cut = run_action(target, "network.cut", {"endpoint": "aurora"})
    assert cut.status == "skipped" and "closes open connections" in cut.detail
