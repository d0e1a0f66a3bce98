"""CloudWatch GetMetricData as CloudWatch answers it, where moto's differs: extended statistics (p50,
p99, ...) and the metric math the stack's dashboard and alarms use.

moto's GetMetricData returns nothing for a percentile and its own expression parser knows neither IF nor
FILL (the dashboard's 5xx rate). Here each MetricStat query reads its series from the metric store, one
datapoint per whole period (periods start at multiples of the period, as CloudWatch aligns them), with
the alarm evaluator's statistics; each expression is evaluated point-wise by the alarms' evaluator over
the timestamps its inputs have. Values are raw over the period asked for: locally a Sum over a
compressed minute (60 / time_scale seconds) counts what that wall-clock window saw.
An expression the local cloud does not evaluate is a 400 naming it, never an empty series.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import CloudWatchBackend

from devenv.emulator import metric_math, metric_store
from devenv.emulator.alarm_rules import NotEvaluated, statistic

Series = dict[float, float]  # period start (epoch seconds) -> value


def stat_series(backend: CloudWatchBackend, metric_stat: dict[str, Any], start: float, end: float) -> Series:
    """One datapoint per period of [start, end) that has data: the statistic of its samples."""
    metric = metric_stat["Metric"]
    period = int(metric_stat["Period"])
    key = metric_store.series_key(metric["Namespace"], metric["MetricName"], metric.get("Dimensions", []))
    first = start - start % period
    stored = metric_store.window(backend, key, first, end, metric_stat.get("Unit"))
    by_period: dict[float, list[Any]] = {}
    for item in stored:
        by_period.setdefault(item.at - item.at % period, []).append(item.sample)
    found: Series = {}
    for at, samples in sorted(by_period.items()):
        try:
            value = statistic(samples, metric_stat["Stat"])
        except NotEvaluated as exc:
            raise ValidationError(str(exc)) from None
        if value is not None:
            found[at] = value[0]
    return found


def expression_series(expression: str, inputs: dict[str, Series]) -> Series:
    """The expression at each timestamp any of its inputs has (FILL gives the missing ones a value)."""
    try:
        tree = metric_math.parse(expression)
    except NotEvaluated as exc:
        raise ValidationError(str(exc)) from None
    unknown = metric_math.names(tree) - set(inputs)
    if unknown:
        raise ValidationError(f"metric math expression {expression!r} names no query {sorted(unknown)}")
    used = [inputs[name] for name in metric_math.names(tree)]
    moments = sorted(set().union(*used)) if used else []
    found: Series = {}
    for at in moments:
        value = metric_math.evaluate(tree, {name: series.get(at) for name, series in inputs.items()})
        if value is not None:
            found[at] = value
    return found


def results(
    backend: CloudWatchBackend, queries: Iterable[dict[str, Any]], start: float, end: float
) -> list[tuple[dict[str, Any], Series]]:
    """Each query with its series, in the order asked; expressions may read any other query's id."""
    queries = list(queries)
    series: dict[str, Series] = {
        q["Id"]: stat_series(backend, q["MetricStat"], start, end) for q in queries if "MetricStat" in q
    }
    pending = [q for q in queries if "MetricStat" not in q]
    while pending:
        ready = [q for q in pending if not _names(q["Expression"]) & _ids(pending)]
        if not ready:
            raise ValidationError(
                f"metric math expressions read each other in a cycle: {sorted(_ids(pending))}"
            )
        for query in ready:
            series[query["Id"]] = expression_series(query["Expression"], series)
            pending.remove(query)
    return [(q, series[q["Id"]]) for q in queries]


def _names(expression: str) -> set[str]:
    try:
        return metric_math.names(metric_math.parse(expression))
    except NotEvaluated as exc:
        raise ValidationError(str(exc)) from None


def _ids(queries: list[dict[str, Any]]) -> set[str]:
    return {q["Id"] for q in queries}


def _label(query: dict[str, Any]) -> str:
    if query.get("Label"):
        return str(query["Label"])
    if "MetricStat" in query:
        return str(query["MetricStat"]["Metric"]["MetricName"])
    return str(query["Id"])


def get_metric_data(
    self: CloudWatchBackend,
    queries: list[dict[str, Any]],
    start_time: datetime,
    end_time: datetime,
    scan_by: str = "TimestampAscending",
) -> list[dict[str, Any]]:
    """GetMetricData as CloudWatch answers it: percentiles per aligned period and metric math (moto's
    returns nothing for percentiles and evaluates no expression); replaces moto's in moto_patches."""
    start, end = metric_store.epoch(start_time), metric_store.epoch(end_time)
    if start >= end:
        raise ValidationError("The parameter EndTime must be greater than StartTime.")
    answered = []
    for query, series in results(self, queries, start, end):
        if not _returned(query):
            continue
        moments = sorted(series, reverse=scan_by == "TimestampDescending")
        answered.append(
            {
                "id": query["Id"],
                "label": _label(query),
                "values": [series[at] for at in moments],
                "timestamps": [datetime.fromtimestamp(at, UTC) for at in moments],
                "status_code": "Complete",
            }
        )
    return answered


def _returned(query: dict[str, Any]) -> bool:
    flag = query.get("ReturnData", True)
    return flag not in (False, "false", "False")
