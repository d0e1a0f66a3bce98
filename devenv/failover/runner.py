"""Run one experiment: set-up, steady-state check, background load, injection, measurement, rollbacks,
data-loss check, verdict. Rollbacks always run (finally), whatever happened before them.

Verdicts and exit codes, as the load tests: `pass` 0; `fail` 1 (a criterion or the hypothesis after the
fault breached, named in `breaches`); `aborted` 2 (the hypothesis did not hold before injection: nothing
was injected); `error` 2 (set-up: the target, the token, an action the target refused).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from devenv.errors import DevenvError
from devenv.failover import alarm_checks, audit, measure, report
from devenv.failover.actions import run_action
from devenv.failover.aws_calls import ActionFailed
from devenv.failover.experiment import Experiment, Step
from devenv.failover.load import BackgroundLoad, HealthProbe, LoadSpec, new_run_tag
from devenv.failover.target import Target
from devenv.runtime.probes import ProbeResult, held_for, wait_until_ready
from devenv.targets import dashboard_link, signals
from devenv.targets.management import ManagementError

EXIT_CODES = {"pass": 0, "fail": 1, "aborted": 2, "error": 2}
PROJECT = "failover-experiments"
AFTER_MIN_S = 5.0  # load kept running at least this long after the method ends
LOAD_OVERRUN_S = 120.0  # the load may outlast its planned duration by this much (a slow method)
JOURNAL_FILE = "journal.json"
TIMELINE_FILE = "timeline.json"

Progress = Callable[[str], None]


def proxy_token(target: Target, api_key: str) -> str:
    """A short-lived proxy token of the experiments' project, made through the management API."""
    project = target.management.project_named(PROJECT, api_key)
    return str(target.management.create_token(project["id"], duration_minutes=60)["token"])


class Run:
    """The state of one experiment run, turned into the journal at the end."""

    def __init__(self, experiment: Experiment, target: Target, run_dir: Path, progress: Progress) -> None:
        self.experiment = experiment
        self.target = target
        self.run_dir = run_dir
        self.progress = progress
        self.t0 = time.monotonic()
        self.started_at = dt.datetime.now(dt.UTC)
        self.tag = new_run_tag()
        self.steps: list[dict[str, Any]] = []
        self.breaches: list[str] = []
        self.verdict: str | None = None
        self.errors: list[str] = []
        self.injected_at: float | None = None
        self.method_ended: float | None = None
        self.load_started = 0.0
        self.load: BackgroundLoad | None = None
        hypothesis = experiment.hypothesis.health
        self.health = HealthProbe(
            target.endpoint.url + hypothesis.path,
            hypothesis.statuses,
            hypothesis.body_statuses,
            hypothesis.interval_s,
            self.t0,
        )
        self.audit_result: audit.AuditResult | None = None
        self.settled_after_s: float | None = None
        self.task_counts: signals.TaskCountSampler | None = None

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def step(self, phase: str, step: Step) -> None:
        record: dict[str, Any] = {
            "phase": phase,
            "action": step.action,
            "args": step.args,
            "started_s": self.now(),
        }
        self.steps.append(record)
        self.progress(f"{phase}: {step.action} {json.dumps(step.args) if step.args else ''}".rstrip())
        try:
            outcome = run_action(self.target, step.action, step.args)
        except (ActionFailed, DevenvError) as exc:
            record.update(status="error", detail=getattr(exc, "message", str(exc)), ended_s=self.now())
            raise
        record.update(status=outcome.status, detail=outcome.detail, ended_s=self.now())
        if outcome.data:
            record["data"] = outcome.data
        if outcome.status == "skipped":
            self.progress(f"  skipped: {outcome.detail}")

    def execute(self, api_key: str) -> dict[str, Any]:
        exp = self.experiment
        setup_started = False
        self.task_counts = signals.TaskCountSampler(self.target.api, self.target.cluster).start()
        try:
            token = proxy_token(self.target, api_key)
            setup_started = True
            for step in exp.setup:
                self.step("setup", step)
            settled = self.await_steady_state()
            if not settled.ok:
                self.abort(f"before injection: {settled.detail}")
                return self.finish()
            self.start_load(token)
            began = self.load_started = self.now()
            self.sleep_until(began + exp.load.inject_at_s)
            baseline = measure.window(self.requests(), began, began + exp.load.inject_at_s)
            samples = [s for s in self.health.samples if s.t >= began]
            breaches = measure.hypothesis_breaches(
                measure.health_failure(samples),
                baseline,
                exp.hypothesis.max_error_rate,
                exp.hypothesis.max_p99_ms,
                "before injection",
            )
            if breaches:
                self.abort(*breaches)
                return self.finish()
            self.progress(
                f"steady state holds ({baseline.requests} requests, p99 {baseline.p99_ms} ms): injecting"
            )
            self.injected_at = self.now()
            for step in exp.method:
                self.step("method", step)
            self.method_ended = self.now()
            stop_at = max(began + exp.load.duration_s, self.method_ended + AFTER_MIN_S)
            self.sleep_until(stop_at)
        except (ActionFailed, DevenvError) as exc:
            self.verdict = "error"
            self.errors.append(getattr(exc, "message", str(exc)))
        except Exception as exc:  # an experiment must never skip its rollbacks; the error is journaled
            self.verdict = "error"
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.stop_load()
            if setup_started:
                self.rollback()
        if self.verdict is None and self.load is not None and self.load.error:
            self.verdict = "error"
            self.errors.append(f"the background load failed: {self.load.error}")
        if self.verdict is None and exp.audit.enabled:
            self.check_audit()
        return self.finish()

    def await_steady_state(self) -> ProbeResult:
        """Wait, within the hypothesis's bound, until the health probe holds: a fault of an earlier run
        (a Redis restart, a rolled task) may still be settling. The wait is recorded in the journal."""
        started = time.monotonic()
        health = self.health

        def holds() -> ProbeResult:
            sample = health.check()
            return ProbeResult(sample.ok, f"GET {health.url} -> {sample.status} {sample.body_status}")

        hypothesis = self.experiment.hypothesis
        timeout_s = hypothesis.settle_timeout_s
        steady = held_for(holds, hypothesis.settle_hold_s)
        result = wait_until_ready(steady, timeout_s, interval_s=health.interval_s)
        self.settled_after_s = round(time.monotonic() - started, 3) if result.ok else None
        if result.ok and self.settled_after_s:
            self.progress(f"steady state reached after {self.settled_after_s:g} s")
        elif not result.ok:
            return ProbeResult(
                False, f"the health probe did not hold within {timeout_s:g} s ({result.detail})"
            )
        return result

    def abort(self, *breaches: str) -> None:
        self.verdict = "aborted"
        self.breaches.extend(breaches)
        self.progress("hypothesis does not hold before injection; nothing injected: " + "; ".join(breaches))

    def start_load(self, token: str) -> None:
        load = self.experiment.load
        spec = LoadSpec(
            url=self.target.endpoint.url,
            token=token,
            rate=load.rate,
            duration_s=load.duration_s + LOAD_OVERRUN_S,
            concurrency=load.concurrency,
            timeout_s=load.timeout_s,
            path=load.path,
            keep_alive=load.keep_alive,
        )
        self.load = BackgroundLoad(spec, self.tag)
        self.load.start(self.t0)
        self.health.start()
        self.progress(
            f"background load: {load.rate:g} req/s for {load.duration_s:g} s, fault at {load.inject_at_s:g} s"
        )

    def stop_load(self) -> None:
        if self.load is not None:
            self.load.stop()
            self.load.join()
        self.health.stop()

    def sleep_until(self, at_s: float) -> None:
        while self.now() < at_s:
            if self.load is not None and self.load.error:
                raise RuntimeError(f"the background load failed: {self.load.error}")
            time.sleep(min(0.2, max(0.0, at_s - self.now())))

    def requests(self) -> list[Any]:
        return self.load.snapshot() if self.load is not None else []

    def rollback(self) -> None:
        for step in self.experiment.rollbacks:
            try:
                self.step("rollback", step)
            except (ActionFailed, DevenvError) as exc:
                self.errors.append(f"rollback {step.action} failed: {getattr(exc, 'message', str(exc))}")
            except Exception as exc:
                self.errors.append(f"rollback {step.action} failed: {type(exc).__name__}: {exc}")

    def check_audit(self) -> None:
        requests = self.requests()
        answered = [r.request_id for r in requests if r.answered]
        unanswered = [r.request_id for r in requests if not r.answered]
        self.progress(f"data-loss check: {len(answered)} answered requests, waiting for the dispatcher")
        try:
            self.audit_result = audit.check(
                self.target.management,
                answered,
                unanswered,
                self.started_at,
                f"fo-{self.tag}-",
                self.experiment.audit.catch_up_timeout_s,
                self.progress,
            )
        except ManagementError as exc:
            self.verdict = "error"
            self.errors.append(f"the data-loss check could not read the audit log: {exc}")

    def read_signals(self) -> dict[str, Any]:
        """The target's signals over the run, once every `back_to` alarm criterion's moment has come
        (its within_s divided by the target's time_scale); failures to read go to the journal's errors."""
        criteria = self.experiment.criteria.alarms
        if criteria and self.injected_at is not None and self.verdict is None:
            try:
                scale = self.target.api.time_scale()
            except DevenvError as exc:
                scale = 1.0
                self.errors.append(f"signals: time_scale: {exc.message}")
            due = [alarm_checks.deadline_s(c, self.injected_at, scale) for c in criteria]
            last = max((d for d in due if d is not None), default=0.0)
            if last > self.now():
                self.progress(f"waiting {last - self.now():.0f} s for the alarm criteria's moment")
                while (left := last - self.now()) > 0:
                    time.sleep(min(0.5, left))
        if self.task_counts is not None:
            self.task_counts.stop()
        found = signals.read(
            self.target.api, self.started_at.timestamp(), time.time(), self.task_counts, self.target.cluster
        )
        self.errors += [f"signals: {e}" for e in found["errors"]]
        return found

    def finish(self) -> dict[str, Any]:
        exp = self.experiment
        found = self.read_signals()
        alarm_results: list[dict[str, Any]] = []
        requests = self.requests()
        samples = list(self.health.samples)
        figures: dict[str, Any] = {
            "failed_requests": None,
            "failure_rate": None,
            "recovery_s": None,
            "p99_ms_during": None,
            "p99_ms_after": None,
        }
        detail: dict[str, Any] = {}
        load_end = max((r.start for r in requests), default=0.0) + 1e-9
        if self.injected_at is not None and self.method_ended is not None and self.verdict != "error":
            recovered = measure.recovered_at(self.injected_at, samples, requests)
            during_end = max(recovered if recovered is not None else load_end, self.method_ended)
            fault = measure.window(requests, self.injected_at)
            during = measure.window(requests, self.injected_at, during_end)
            after = measure.window(requests, during_end)
            figures.update(
                failed_requests=fault.failed,
                failure_rate=round(fault.error_rate, 5),
                recovery_s=None if recovered is None else round(recovered - self.injected_at, 2),
                p99_ms_during=during.p99_ms,
                p99_ms_after=after.p99_ms,
            )
            detail["fault_window_s"] = [self.injected_at, round(during_end, 3)]
            best = exp.hypothesis.health.body_statuses[:1]
            strict = [replace(s, ok=s.ok and (not best or s.body_status in best)) for s in samples]
            full = measure.recovered_at(self.injected_at, strict, requests)
            detail["full_health_s"] = None if full is None else round(full - self.injected_at, 2)
            detail["recovered_at_s"] = recovered
            detail["windows"] = {
                "baseline": vars(measure.window(requests, self.load_started, self.injected_at)),
                "during": vars(during),
                "after": vars(after),
            }
            if self.verdict is None:
                self.breaches += measure.hypothesis_breaches(
                    measure.health_failure(samples[-1:]),
                    after,
                    exp.hypothesis.max_error_rate,
                    exp.hypothesis.max_p99_ms,
                    "after the fault",
                )
                self.breaches += criteria_breaches(exp, figures, self.audit_result)
                alarm_breaches, alarm_results = alarm_checks.check(
                    exp.criteria.alarms,
                    found.get("alarms"),
                    self.injected_at,
                    found["duration_s"],
                    found["time_scale"] or 1.0,
                )
                self.breaches += alarm_breaches
                self.verdict = "fail" if self.breaches else "pass"
        verdict = self.verdict or "error"
        result = self.audit_result
        started = self.started_at.timestamp()
        dashboard = dashboard_link.at_window(self.target.name, self.target.dashboard, started, time.time())
        journal: dict[str, Any] = {
            "experiment": exp.name,
            "target": self.target.name,
            "verdict": verdict,
            **figures,
            "lost_events": result.lost if result else None,
            "duplicate_events": result.duplicates if result else None,
            "missing_ids": result.missing_ids if result else [],
            "exit_code": EXIT_CODES[verdict],
            "breaches": self.breaches,
            "errors": self.errors,
            "time_scale": found["time_scale"],
            "alarm_checks": alarm_results,
            "description": exp.description,
            "started_at": self.started_at.isoformat(),
            "run_dir": str(self.run_dir),
            "settled_after_s": self.settled_after_s,
            "load_started_s": self.load_started,
            "injected_at_s": self.injected_at,
            "method_ended_s": self.method_ended,
            **detail,
            "requests": len(requests),
            "answered_by_proxy": sum(r.answered for r in requests),
            "health_samples": len(samples),
            "criteria": exp.criteria.model_dump(exclude_none=True),
            "hypothesis": exp.hypothesis.model_dump(),
            "load": exp.load.model_dump(),
            "steps": self.steps,
            "audit": vars(result) if result else None,
            "signals": found,
            "dashboard": dashboard,
            "load_generator": "devenv.failover.load: asyncio + aiohttp, constant rate, one X-Request-ID each, "
            + ("keep-alive connections" if exp.load.keep_alive else "a new connection per request"),
        }
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / TIMELINE_FILE).write_text(
            json.dumps({"requests": [r.as_dict() for r in requests], "health": [vars(s) for s in samples]})
        )
        try:
            journal["report"] = str(report.write_timeline(self.run_dir, journal, requests, samples, found))
        except Exception as exc:  # a plot must not hide the verdict; say why it is missing
            journal["report"] = None
            journal["errors"].append(f"the timeline plot failed: {type(exc).__name__}: {exc}")
        journal["journal"] = str(self.run_dir / JOURNAL_FILE)
        (self.run_dir / JOURNAL_FILE).write_text(json.dumps(journal, indent=2, default=str))
        return journal


def criteria_breaches(
    exp: Experiment, figures: dict[str, Any], result: audit.AuditResult | None
) -> list[str]:
    """The experiment's pass criteria that its figures breach."""
    c = exp.criteria
    out: list[str] = []

    def over(name: str, value: float | None, limit: float | None, unit: str = "") -> None:
        if limit is not None and value is not None and value > limit:
            out.append(f"{name} {value:g}{unit} > {limit:g}{unit}")

    over("failed requests", figures["failed_requests"], c.max_failed_requests)
    over("failure rate", figures["failure_rate"], c.max_failure_rate)
    if c.max_recovery_s is not None and figures["recovery_s"] is None:
        out.append("no recovery: the hypothesis did not hold again before the load ended")
    over("recovery", figures["recovery_s"], c.max_recovery_s, " s")
    over("p99 during the fault", figures["p99_ms_during"], c.max_p99_ms_during, " ms")
    over("p99 after the fault", figures["p99_ms_after"], c.max_p99_ms_after, " ms")
    if result is not None:
        over("lost events", result.lost, c.max_lost_events)
        over("duplicate events", result.duplicates, c.max_duplicate_events)
    elif c.max_lost_events is not None or c.max_duplicate_events is not None:
        out.append("the data-loss check did not run")
    return out


def run(
    experiment: Experiment, target: Target, run_dir: Path, progress: Progress, api_key: str
) -> dict[str, Any]:
    """Run the experiment and write its journal (and timeline) into run_dir; the journal."""
    return Run(experiment, target, run_dir, progress).execute(api_key)
