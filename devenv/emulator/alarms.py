"""CloudWatch alarms evaluated inside the emulator, as CloudWatch evaluates them.

moto stores alarms and never evaluates them. Here a background thread evaluates every metric alarm of
every region once per evaluation interval (a minute, or the period when shorter; both divided by
time_scale), from the datums PutMetricData stored (devenv.emulator.metric_store): the statistic of each
period of the evaluation range, then the rules of devenv.emulator.alarm_rules. A change of state updates
the alarm (StateValue, StateReason, StateReasonData, StateUpdatedTimestamp), is kept for
DescribeAlarmHistory (which moto lacks), and runs the actions for the new state: Application Auto Scaling
policies (devenv.emulator.target_tracking; re-invoked once a minute while the alarm stays in ALARM, as
CloudWatch does for Auto Scaling actions) and SNS topics (published to the emulator's SNS). Other actions
are recorded in the history as not executed. An alarm the local cloud cannot evaluate (a metric math
function or statistic it lacks, anomaly detection, composite alarms) goes to INSUFFICIENT_DATA with a
reason naming what it lacks.

As on AWS: a new alarm starts in INSUFFICIENT_DATA; PutMetricAlarm on an existing alarm keeps its state;
SetAlarmState changes the state (and runs the actions) until the next evaluation.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import Alarm, CloudWatchBackend, MetricDataQuery, cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sns.models import sns_backends

from devenv.emulator import metric_math, metric_store, target_tracking, time_scale
from devenv.emulator.alarm_rules import NotEvaluated, Rule, Slot, Verdict, evaluate, statistic, timestamp

log = logging.getLogger("devenv.alarms")
HISTORY_KEEP = 10_000  # history items kept per region (AWS keeps 30 days)
_lock = threading.RLock()
_started = threading.Event()


@dataclass(frozen=True)
class Query:
    """One metric an alarm reads: its series and statistic."""

    id: str
    key: metric_store.SeriesKey
    statistic: str
    unit: str | None


@dataclass(frozen=True)
class Plan:
    """How to compute an alarm's datapoints: its metric(s), and the expression over them, if any."""

    rule: Rule
    queries: list[Query]
    expression: metric_math.Node | None


def backends() -> Iterator[CloudWatchBackend]:
    for account in list(cloudwatch_backends.values()):
        yield from list(account.values())


def backend_of(alarm: Alarm) -> CloudWatchBackend:
    _, _, _, region, account, *_ = alarm.alarm_arn.split(":")
    return cloudwatch_backends[account][region]


# -- what an alarm reads ------------------------------------------------------------------------------


def plan(alarm: Alarm) -> Plan:
    """The alarm's metric(s), statistic and rule; NotEvaluated names what the local cloud lacks."""
    if alarm.threshold_metric_id or alarm.threshold is None:
        raise NotEvaluated("anomaly detection (ThresholdMetricId)")
    if alarm.metric_data_queries:
        queries, expression, period, label = _math(alarm.metric_data_queries)
    else:
        label = alarm.statistic or alarm.extended_statistic or "Average"
        queries = [
            Query(
                "m",
                metric_store.series_key(alarm.namespace, alarm.metric_name, alarm.dimensions),
                label,
                alarm.unit,
            )
        ]
        expression, period = None, int(alarm.period or 60)
    for query in queries:
        statistic([], query.statistic)  # refuses a statistic the local cloud lacks
    periods = int(alarm.evaluation_periods)
    rule = Rule(
        comparison=alarm.comparison_operator,
        threshold=float(alarm.threshold),
        evaluation_periods=periods,
        datapoints_to_alarm=min(periods, int(alarm.datapoints_to_alarm or periods)),
        treat_missing_data=alarm.treat_missing_data or "missing",
        statistic=label,
        period_s=period,
    )
    return Plan(rule, queries, expression)


def _math(
    definitions: list[MetricDataQuery],
) -> tuple[list[Query], metric_math.Node | None, int, str]:
    """The metrics of a metric math alarm, the expression it returns, the period and a statistic label."""
    queries, periods = [], set()
    for definition in definitions:
        stat = definition.metric_stat
        if stat is not None:
            metric = stat.metric
            key = metric_store.series_key(metric.namespace, metric.metric_name, metric.dimensions)
            queries.append(Query(definition.id, key, str(stat.stat), stat.unit))
            periods.add(int(stat.period))
    returned = [d for d in definitions if str(d.return_data).lower() == "true"] or [
        d for d in definitions if d.expression
    ]
    if len(returned) != 1:
        raise NotEvaluated("a metric math alarm without exactly one returned expression (ReturnData)")
    if len(periods) > 1:
        raise NotEvaluated("metric math over metrics of different periods")
    period = periods.pop() if periods else int(returned[0].period or 60)
    label = queries[0].statistic if queries else "Average"
    if not returned[0].expression:
        only = next(q for q in queries if q.id == returned[0].id)
        return [only], None, period, only.statistic
    expression = metric_math.parse(returned[0].expression)
    missing = metric_math.names(expression) - {q.id for q in queries}
    if missing:
        raise NotEvaluated(f"metric math over {', '.join(sorted(missing))} (not a metric of the alarm)")
    return queries, expression, period, label


def slots(backend: CloudWatchBackend, alarm_plan: Plan, end: float) -> list[Slot]:
    """The evaluation range ending at `end`: one Slot per period, oldest first.

    Sum and SampleCount are multiplied by time_scale: the period is compressed but the samples keep
    their real timestamps, so without it a threshold would mean time_scale times more per period."""
    rule, scale = alarm_plan.rule, time_scale.factor()
    period = rule.period_s / scale
    starts = [end - (rule.evaluation_range - i) * period for i in range(rule.evaluation_range)]
    values: dict[str, list[float | None]] = {}
    counts = [0.0] * len(starts)
    for number, query in enumerate(alarm_plan.queries):
        buckets: list[list[Any]] = [[] for _ in starts]
        for stored in metric_store.window(backend, query.key, starts[0], end, query.unit):
            buckets[min(len(starts) - 1, int((stored.at - starts[0]) // period))].append(stored.sample)
        factor = scale if query.statistic in ("Sum", "SampleCount") else 1.0
        found = [statistic(bucket, query.statistic) for bucket in buckets]
        values[query.id] = [None if f is None else f[0] * factor for f in found]
        if number == 0:
            counts = [0.0 if f is None else f[1] for f in found]
    result = []
    for index, start in enumerate(starts):
        point = {qid: series[index] for qid, series in values.items()}
        value = (
            metric_math.evaluate(alarm_plan.expression, point)
            if alarm_plan.expression is not None
            else point[alarm_plan.queries[0].id]
        )
        result.append(Slot(datetime.fromtimestamp(start, UTC), value, counts[index]))
    return result


# -- state changes and their actions ------------------------------------------------------------------


def _history(backend: CloudWatchBackend) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] | None = getattr(backend, "_devenv_history", None)
    if items is None:
        items = []
        backend._devenv_history = items  # type: ignore[attr-defined]
    return items


def record(backend: CloudWatchBackend, name: str, kind: str, summary: str, data: dict[str, Any]) -> None:
    """One DescribeAlarmHistory item."""
    with _lock:
        items = _history(backend)
        items.append(
            {
                "AlarmName": name,
                "AlarmType": "MetricAlarm",
                "Timestamp": datetime.now(UTC),
                "HistoryItemType": kind,
                "HistorySummary": summary,
                "HistoryData": json.dumps(data),
            }
        )
        del items[:-HISTORY_KEEP]


def _state(alarm: Alarm) -> dict[str, Any]:
    try:
        data = json.loads(alarm.state_reason_data or "{}")
    except ValueError:
        data = alarm.state_reason_data
    return {"stateValue": alarm.state_value, "stateReason": alarm.state_reason, "stateReasonData": data}


def transition(alarm: Alarm, state: str, reason: str, reason_data: str, now: float) -> None:
    """Move the alarm to `state` as CloudWatch does: the new state, its history item, its actions."""
    with _lock:
        backend = backend_of(alarm)
        old = _state(alarm)
        alarm.state_value, alarm.state_reason, alarm.state_reason_data = state, reason, reason_data
        alarm.state_updated_timestamp = alarm.state_transitioned_timestamp = utcnow()  # type: ignore[attr-defined]
        record(
            backend,
            alarm.name,
            "StateUpdate",
            f"Alarm updated from {old['stateValue']} to {state}",
            {"version": "1.0", "oldState": old, "newState": _state(alarm)},
        )
        run_actions(alarm, now, first=True)


def run_actions(alarm: Alarm, now: float, first: bool) -> None:
    """The actions of the alarm's state, each recorded in the history; after the first run only Auto
    Scaling actions run again (once a minute while the alarm stays in ALARM), unrecorded."""
    if not alarm.actions_enabled:
        return
    actions = {
        "ALARM": alarm.alarm_actions,
        "OK": alarm.ok_actions,
        "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
    }[alarm.state_value]
    alarm._devenv_rerun_at = now + time_scale.seconds(60)  # type: ignore[attr-defined]
    for arn in actions:
        if target_tracking.is_policy(arn):
            error = target_tracking.invoke(arn, alarm, now)
        elif not first:
            continue
        elif ":sns:" in arn:
            error = _notify(arn, alarm)
        else:
            error = "the local cloud runs Application Auto Scaling and SNS actions only"
        if first:
            summary = (
                f"Successfully executed action {arn}"
                if error is None
                else f"Failed to execute action {arn}. Received error: {error}"
            )
            data = {"actionState": "Succeeded" if error is None else "Failed", "notificationResource": arn}
            record(backend_of(alarm), alarm.name, "Action", summary, data)


def _notify(topic_arn: str, alarm: Alarm) -> str | None:
    """Publish the state change to the emulator's SNS topic, in the shape CloudWatch sends."""
    _, _, _, region, account, *_ = topic_arn.split(":")
    message = {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account,
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": timestamp(datetime.now(UTC)),
        "Region": region,
        "AlarmArn": alarm.alarm_arn,
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": alarm.threshold,
        },
    }
    try:
        topic = sns_backends[account][region].get_topic(topic_arn)
        topic.publish(json.dumps(message), subject=f'{alarm.state_value}: "{alarm.name}" in {region}')
    except Exception as exc:  # a missing topic fails the action, not the evaluation
        return f"{type(exc).__name__}: {exc}"
    return None


# -- the evaluator ------------------------------------------------------------------------------------


def evaluate_alarm(alarm: Alarm, now: float) -> None:
    """One evaluation: the state the data says, and the actions it runs; schedules the next one."""
    scale = time_scale.factor()
    try:
        if alarm.rule is not None:
            raise NotEvaluated("composite alarms")
        alarm_plan = plan(alarm)
    except NotEvaluated as exc:
        alarm._devenv_due = now + time_scale.seconds(60)  # type: ignore[attr-defined]
        reason = f"Not evaluated by the local cloud: it does not evaluate {exc}."
        if alarm.state_reason != reason:
            transition(alarm, "INSUFFICIENT_DATA", reason, "{}", now)
        return
    grain = min(alarm_plan.rule.period_s, 60) / scale
    end = math.floor(now / grain) * grain
    alarm._devenv_due = end + grain + min(grain / 4, 10.0)  # type: ignore[attr-defined]
    range_slots = slots(backend_of(alarm), alarm_plan, end)
    newest = next((s.value for s in reversed(range_slots) if s.value is not None), None)
    setattr(alarm, target_tracking.LATEST_VALUE, newest)
    verdict: Verdict | None = evaluate(alarm_plan.rule, range_slots, datetime.fromtimestamp(now, UTC))
    with _lock:
        if verdict is not None and verdict.state != alarm.state_value:
            transition(alarm, verdict.state, verdict.reason, json.dumps(verdict.reason_data), now)
        elif alarm.state_value == "ALARM" and now >= getattr(alarm, "_devenv_rerun_at", 0.0):
            run_actions(alarm, now, first=False)


def run() -> None:
    """Evaluate each alarm when due; prune old metric data once a minute (for the process's life)."""
    pruned_at = time.time()
    while True:
        now = time.time()
        wait = 1.0
        for backend in backends():
            for alarm in list(backend.alarms.values()):
                if getattr(alarm, "_devenv_due", 0.0) <= now:
                    try:
                        evaluate_alarm(alarm, now)
                    except Exception:  # one broken alarm must not stop the others
                        log.exception("evaluating alarm %s failed", alarm.name)
                        alarm._devenv_due = now + time_scale.seconds(60)  # type: ignore[attr-defined]
                wait = min(wait, getattr(alarm, "_devenv_due", now) - now)
        if now - pruned_at >= 60:
            metric_store.prune(list(backends()), now)
            pruned_at = now
        time.sleep(max(0.05, wait))


def start() -> None:
    """The evaluator thread, once per process (a daemon: it ends with the emulator)."""
    with _lock:
        if _started.is_set():
            return
        _started.set()
    threading.Thread(target=run, name="alarm-evaluator", daemon=True).start()


# -- moto's alarm APIs, as CloudWatch behaves ---------------------------------------------------------


def describe_alarm_history(self: CloudWatchResponse) -> ActionResult:
    """DescribeAlarmHistory: newest first (or ScanBy=TimestampAscending), filtered, paged."""
    name = self._get_param("AlarmName")
    kind = self._get_param("HistoryItemType")
    types = self._get_param("AlarmTypes") or ["MetricAlarm", "CompositeAlarm"]
    start, end = self._get_param("StartDate"), self._get_param("EndDate")
    limit = int(self._get_param("MaxRecords") or 100)
    with _lock:
        items = [
            item
            for item in _history(self.cloudwatch_backend)
            if (not name or item["AlarmName"] == name)
            and (not kind or item["HistoryItemType"] == kind)
            and item["AlarmType"] in types
            and (start is None or item["Timestamp"] >= _aware(start))
            and (end is None or item["Timestamp"] <= _aware(end))
        ]
    if self._get_param("ScanBy") != "TimestampAscending":
        items.reverse()
    token = self._get_param("NextToken")
    offset = int(token) if token and token.isdigit() else 0
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    return ActionResult({"AlarmHistoryItems": page, "NextToken": str(offset + limit) if more else None})


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def keeping_state(original: Callable[..., Alarm]) -> Callable[..., Alarm]:
    """moto's PutMetricAlarm: a new alarm starts in INSUFFICIENT_DATA, an update keeps the state (and when it
    last ran its actions), and both are written to the alarm's history."""

    def put_metric_alarm(self: CloudWatchBackend, *args: Any, **kwargs: Any) -> Alarm:
        with _lock:
            name = kwargs.get("name", args[0] if args else None)
            previous = self.alarms.get(name) if name else None
            alarm: Alarm = original(self, *args, **kwargs)
            if previous is None:
                alarm.state_value = "INSUFFICIENT_DATA"
                record(
                    self,
                    alarm.name,
                    "ConfigurationUpdate",
                    f'Alarm "{alarm.name}" created',
                    {"type": "Create"},
                )
            else:
                for attribute in (
                    "state_value",
                    "state_reason",
                    "state_reason_data",
                    "state_updated_timestamp",
                    "_devenv_rerun_at",
                ):
                    if hasattr(previous, attribute):
                        setattr(alarm, attribute, getattr(previous, attribute))
                record(
                    self,
                    alarm.name,
                    "ConfigurationUpdate",
                    f'Alarm "{alarm.name}" updated',
                    {"type": "Update"},
                )
            return alarm

    return put_metric_alarm


def recording_deletes(original: Callable[[CloudWatchBackend, list[str]], None]) -> Callable[..., None]:
    """moto's DeleteAlarms, each deletion written to the alarm's history."""

    def delete_alarms(self: CloudWatchBackend, alarm_names: list[str]) -> None:
        with _lock:
            for name in alarm_names:
                if name in self.alarms:
                    record(self, name, "ConfigurationUpdate", f'Alarm "{name}" deleted', {"type": "Delete"})
            original(self, alarm_names)

    return delete_alarms


def set_alarm_state(self: Alarm, reason: str, reason_data: str, state_value: str) -> None:
    """SetAlarmState: a state change like any other, with its history and actions."""
    if state_value != self.state_value:
        transition(self, state_value, reason, reason_data or "{}", time.time())
