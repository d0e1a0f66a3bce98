"""CloudWatch's rules for a metric alarm's state, as AWS documents them: pure (no clock, no moto).

From the CloudWatch User Guide, "Alarm evaluation" and "Configuring how CloudWatch alarms treat missing
data" (its two example tables are tests/devenv/emulator/test_alarm_rules.py):
- each period gives one datapoint (the statistic of the samples in it) or none (missing);
- CloudWatch looks at an *evaluation range* wider than EvaluationPeriods (N): with N real datapoints in
  it, the newest N decide, whatever TreatMissingData says; with fewer, every real one counts and the
  missing ones are filled per TreatMissingData, as few times as possible (N minus the real ones);
- ALARM when at least DatapointsToAlarm (M) of them breach, otherwise OK;
- all missing: `missing` gives INSUFFICIENT_DATA, `ignore` keeps the state, `breaching` ALARM,
  `notBreaching` OK;
- avoiding premature transitions: with too few real datapoints, all breaching, `missing` goes to ALARM
  (and `ignore` keeps its state) when the oldest is at least M periods old; younger (- - - - X), the
  alarm keeps its state until more data comes (AWS: it "does not go immediately into ALARM"). The
  tables add that a non-breaching datapoint anywhere in the range (row "0 - X - -" of the 2-of-3 table
  stays OK) turns the rule off.
The documented examples use a range of 5 for N = 3; AWS does not publish the rule for other N, so the
range here is always N + 2.

Reasons and reason data follow the wording AWS writes into StateReason / StateReasonData.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EXTRA_RANGE = 2
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
COMPARISONS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "GreaterThanThreshold": ("greater than", operator.gt),
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", operator.ge),
    "LessThanThreshold": ("less than", operator.lt),
    "LessThanOrEqualToThreshold": ("less than or equal to", operator.le),
}
STATISTICS = ("Average", "Sum", "SampleCount", "Minimum", "Maximum")


class NotEvaluated(ValueError):
    """An alarm setting the local cloud does not evaluate; the message names it."""


@dataclass(frozen=True)
class Rule:
    """What decides an alarm's state, from its configuration."""

    comparison: str
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str = "missing"
    statistic: str = "Average"  # or an extended statistic such as p99
    period_s: int = 60

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            raise NotEvaluated(f"ComparisonOperator {self.comparison} (anomaly detection bands)")
        if self.treat_missing_data not in TREATMENTS:
            raise NotEvaluated(f"TreatMissingData {self.treat_missing_data}")

    @property
    def evaluation_range(self) -> int:
        return self.evaluation_periods + EXTRA_RANGE

    def breaches(self, value: float) -> bool:
        return COMPARISONS[self.comparison][1](value, self.threshold)


@dataclass(frozen=True)
class Slot:
    """One period of the evaluation range: its start (UTC) and datapoint, if any."""

    start: datetime
    value: float | None
    samples: float = 0.0


@dataclass(frozen=True)
class Verdict:
    state: str
    reason: str
    reason_data: dict[str, Any]


@dataclass(frozen=True)
class Sample:
    """What one PutMetricData datum contributes to a period: a value, or a statistic set."""

    count: float
    total: float
    low: float
    high: float
    value: float | None  # the single value, when there is one (percentiles need it)


def statistic(samples: Iterable[Sample], name: str) -> tuple[float, float] | None:
    """(the statistic, the sample count) of one period, or None when it has no datapoint; NotEvaluated
    for a statistic the local cloud lacks (whether or not there is data)."""
    rank = None if name in STATISTICS else percentile_rank(name)
    samples = [s for s in samples if s.count > 0]
    if not samples:
        return None
    count = sum(s.count for s in samples)
    total = sum(s.total for s in samples)
    if name == "Average":
        return total / count, count
    if name == "Sum":
        return total, count
    if name == "SampleCount":
        return count, count
    if name == "Minimum":
        return min(s.low for s in samples), count
    if name == "Maximum":
        return max(s.high for s in samples), count
    assert rank is not None
    if any(s.value is None for s in samples):
        return None  # a statistic set hides its values: no percentile, as on AWS
    values = sorted((s.value or 0.0, s.count) for s in samples)
    wanted = max(1.0, math.ceil(rank / 100 * count))
    seen = 0.0
    for value, weight in values:
        seen += weight
        if seen >= wanted:
            return value, count
    return values[-1][0], count


def percentile_rank(name: str) -> float:
    """The rank of a pNN / pNN.NN extended statistic; any other statistic is not evaluated locally."""
    if name.startswith("p"):
        try:
            rank = float(name[1:])
        except ValueError:
            rank = -1.0
        if 0 <= rank <= 100:
            return rank
    raise NotEvaluated(f"statistic {name} (the local cloud evaluates {', '.join(STATISTICS)} and pNN)")


def evaluate(rule: Rule, slots: Sequence[Slot], query_date: datetime) -> Verdict | None:
    """The state `slots` (the evaluation range, oldest first) put the alarm in; None keeps the current one."""
    n, m = rule.evaluation_periods, rule.datapoints_to_alarm
    aged = [(age, s) for age, s in enumerate(reversed(slots)) if s.value is not None]  # newest first
    real = [s for _, s in aged]
    if len(real) >= n:
        return _crossed(rule, real[:n], 0, None, query_date)
    fills = n - len(real)
    treatment = rule.treat_missing_data
    if treatment == "breaching":
        return _crossed(rule, real, fills, True, query_date)
    if treatment == "notBreaching":
        return _crossed(rule, real, fills, False, query_date)
    if not real:
        if treatment == "ignore":
            return None
        return Verdict(
            "INSUFFICIENT_DATA",
            f"Insufficient Data: {_count(n, 'datapoint')} {_was(n)} unknown.",
            _reason_data(rule, [], slots[-n:], query_date),
        )
    if len(real) < m and all(rule.breaches(_value(s)) for s in real):
        if aged[-1][0] + 1 < m or treatment == "ignore":
            return None  # too recent to alarm yet (- - - - X): wait for more datapoints
        return _crossed(rule, real, fills, None, query_date, premature=True)
    return _crossed(rule, real, fills, None, query_date)


def _crossed(
    rule: Rule,
    real: list[Slot],
    fills: int,
    fills_breach: bool | None,
    query_date: datetime,
    premature: bool = False,
) -> Verdict:
    """ALARM or OK from the real datapoints (newest first) and `fills` missing ones counted as
    breaching (True), not breaching (False) or not at all (None)."""
    n, m = rule.evaluation_periods, rule.datapoints_to_alarm
    words = COMPARISONS[rule.comparison][0]
    crossing = [s for s in real if rule.breaches(_value(s))]
    within = [s for s in real if not rule.breaches(_value(s))]
    breaching = len(crossing) + (fills if fills_breach else 0)
    alarm = premature or breaching >= m
    shown, negation = (crossing, "") if alarm else (within, "not ")
    treated = "Breaching" if fills_breach else "NonBreaching"
    if not shown and fills and fills_breach is alarm:
        reason = (
            f"Threshold Crossed: no datapoints were received for {_count(fills, 'period')} and "
            f"{_count(fills, 'missing datapoint')} {_was(fills)} treated as [{treated}]."
        )
    elif n == 1:
        reason = f"Threshold Crossed: 1 datapoint {_listing(shown)} was {negation}{words} the threshold ({rule.threshold!r})."
    elif not shown:
        # OK with no datapoint within the threshold: too few breaching ones, the rest missing
        reason = (
            f"Threshold Crossed: {len(crossing)} out of the last {n} datapoints {_listing(crossing)} "
            f"{_was(len(crossing))} {words} the threshold ({rule.threshold!r}), fewer than the minimum "
            f"{_count(m, 'datapoint')} for OK -> ALARM transition, and {_count(fills, 'datapoint')} {_was(fills)} missing."
        )
    else:
        filled = (
            f" and {_count(fills, 'missing datapoint')} {_was(fills)} treated as [{treated}]"
            if fills and fills_breach is alarm
            else ""
        )
        minimum = (
            f"minimum {_count(m, 'datapoint')} for OK -> ALARM transition"
            if alarm
            else f"minimum {_count(n - m + 1, 'datapoint')} for ALARM -> OK transition"
        )
        reason = (
            f"Threshold Crossed: {len(shown)} out of the last {n} datapoints {_listing(shown)} "
            f"{_was(len(shown))} {negation}{words} the threshold ({rule.threshold!r}){filled} ({minimum})."
        )
    return Verdict("ALARM" if alarm else "OK", reason, _reason_data(rule, real, [], query_date))


def _value(slot: Slot) -> float:
    assert slot.value is not None
    return slot.value


def _listing(slots: list[Slot]) -> str:
    return "[" + ", ".join(f"{_value(s)!r} ({s.start:%d/%m/%y %H:%M:%S})" for s in slots) + "]"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _was(number: int) -> str:
    return "was" if number == 1 else "were"


def timestamp(moment: datetime) -> str:
    """CloudWatch's timestamps in reason data and history: 2024-05-21T10:31:00.000+0000 (UTC)."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+0000"


def _reason_data(
    rule: Rule, real: list[Slot], window: Sequence[Slot], query_date: datetime
) -> dict[str, Any]:
    """StateReasonData as AWS writes it; `real` newest first, `window` the periods looked at."""
    starts = [s.start for s in (*real, *window)]
    data: dict[str, Any] = {"version": "1.0", "queryDate": timestamp(query_date)}
    if starts:
        data["startDate"] = timestamp(min(starts))
    key = "statistic" if rule.statistic in STATISTICS else "extendedStatistic"
    data.update(
        {
            key: rule.statistic,
            "period": rule.period_s,
            "recentDatapoints": [_value(s) for s in reversed(real)],
            "threshold": rule.threshold,
        }
    )
    if real:
        data["evaluatedDatapoints"] = [
            {"timestamp": timestamp(s.start), "sampleCount": s.samples, "value": _value(s)} for s in real
        ]
    return data
