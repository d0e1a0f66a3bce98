"""The alarm rules against AWS's own examples ("Configuring how CloudWatch alarms treat missing data":
both tables, every row and column), plus the reasons and statistics AWS reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from devenv.emulator.alarm_rules import (
    NotEvaluated,
    Rule,
    Sample,
    Slot,
    Verdict,
    evaluate,
    statistic,
)

START = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
QUERY = START + timedelta(minutes=5, seconds=20)
RETAIN = "retain"  # "Retain current state" in AWS's tables
COLUMNS = ("missing", "ignore", "breaching", "notBreaching")


def slots(pattern: str) -> list[Slot]:
    """AWS's notation, oldest first: 0 within the threshold, X breaching, - missing (threshold 1.0)."""
    values = {"0": 0.0, "X": 5.0, "-": None}
    return [
        Slot(START + timedelta(minutes=i), values[mark], 1.0 if values[mark] is not None else 0.0)
        for i, mark in enumerate(pattern.split())
    ]


def state(verdict: Verdict | None) -> str:
    return RETAIN if verdict is None else verdict.state


# Datapoints to Alarm 3, Evaluation Periods 3, evaluation range 5.
THREE_OF_THREE = [
    ("0 - X - X", ("OK", "OK", "OK", "OK")),
    ("0 - - - -", ("OK", "OK", "OK", "OK")),
    ("- - - - -", ("INSUFFICIENT_DATA", RETAIN, "ALARM", "OK")),
    ("0 X X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("- - X - -", ("ALARM", RETAIN, "ALARM", "OK")),
]
# Datapoints to Alarm 2, Evaluation Periods 3 (M out of N), evaluation range 5.
TWO_OF_THREE = [
    ("0 - X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("0 0 X 0 X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("0 - X - -", ("OK", "OK", "ALARM", "OK")),
    ("- - - - 0", ("OK", "OK", "ALARM", "OK")),
    ("- - - X -", ("ALARM", RETAIN, "ALARM", "OK")),
]


@pytest.mark.parametrize(
    ("m", "pattern", "expected"),
    [(3, pattern, expected) for pattern, expected in THREE_OF_THREE]
    + [(2, pattern, expected) for pattern, expected in TWO_OF_THREE],
)
def test_the_documented_tables(m: int, pattern: str, expected: tuple[str, ...]) -> None:
    for treatment, wanted in zip(COLUMNS, expected, strict=True):
        rule = Rule("GreaterThanThreshold", 1.0, 3, m, treatment)
        assert rule.evaluation_range == len(pattern.split())
        assert state(evaluate(rule, slots(pattern), QUERY)) == wanted, (pattern, treatment)


@pytest.mark.parametrize("treatment", ["missing", "ignore"])
@pytest.mark.parametrize("pattern", ["- - - - X", "- - - X -"])
def test_a_recent_lone_breach_waits_for_more_data(pattern: str, treatment: str) -> None:
    """ "The alarm does not go immediately into ALARM state when the data is - - - - X or - - - X -"."""
    assert evaluate(Rule("GreaterThanThreshold", 1.0, 3, 3, treatment), slots(pattern), QUERY) is None


def test_fifteen_of_fifteen_needs_fifteen_datapoints() -> None:
    """Target tracking's low alarm: 14 low datapoints and one missing are not enough to alarm."""
    rule = Rule("LessThanThreshold", 63.0, 15, 15)
    low = [Slot(START + timedelta(minutes=i), 10.0, 5) for i in range(17)]
    assert state(evaluate(rule, [*low[:16], Slot(low[16].start, 70.0)], QUERY)) == "OK"
    assert state(evaluate(rule, low, QUERY)) == "ALARM"
    fourteen = [Slot(s.start, None) for s in low[:3]] + low[3:]
    assert state(evaluate(rule, fourteen, QUERY)) == RETAIN  # not yet: it keeps its state


def test_reasons_use_aws_wording() -> None:
    rule = Rule("GreaterThanOrEqualToThreshold", 1.0, 2, 2, statistic="Maximum")
    alarm = evaluate(rule, slots("0 0 0 X X"), QUERY)
    assert alarm is not None and alarm.state == "ALARM"
    assert alarm.reason == (
        "Threshold Crossed: 2 out of the last 2 datapoints [5.0 (02/12/26 10:04:00), 5.0 (02/12/26 10:03:00)] "
        "were greater than or equal to the threshold (1.0) (minimum 2 datapoints for OK -> ALARM transition)."
    )
    data = alarm.reason_data
    assert data["recentDatapoints"] == [5.0, 5.0] and data["statistic"] == "Maximum"
    assert data["startDate"] == "2026-12-02T10:03:00.000+0000" and data["queryDate"].endswith("+0000")
    assert data["evaluatedDatapoints"][0] == {
        "timestamp": "2026-12-02T10:04:00.000+0000",
        "sampleCount": 1.0,
        "value": 5.0,
    }
    json.dumps(data)  # it is stored as JSON text
    ok = evaluate(rule, slots("0 0 0 X 0"), QUERY)
    assert ok is not None and ok.reason == (
        "Threshold Crossed: 1 out of the last 2 datapoints [0.0 (02/12/26 10:04:00)] was not greater than or "
        "equal to the threshold (1.0) (minimum 1 datapoint for ALARM -> OK transition)."
    )
    single = evaluate(Rule("GreaterThanThreshold", 1.0, 1, 1), slots("- - X"), QUERY)
    assert single is not None and single.reason == (
        "Threshold Crossed: 1 datapoint [5.0 (02/12/26 10:02:00)] was greater than the threshold (1.0)."
    )
    unknown = evaluate(Rule("GreaterThanThreshold", 1.0, 3, 3), slots("- - - - -"), QUERY)
    assert unknown is not None and unknown.reason == "Insufficient Data: 3 datapoints were unknown."
    filled = evaluate(Rule("GreaterThanThreshold", 1.0, 1, 1, "breaching"), slots("- - -"), QUERY)
    assert filled is not None and filled.reason == (
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as "
        "[Breaching]."
    )


def test_statistics_of_a_period() -> None:
    values = [Sample(1, v, v, v, v) for v in (1.0, 2.0, 3.0, 10.0)]
    assert statistic(values, "Average") == (4.0, 4)
    assert statistic(values, "Sum") == (16.0, 4)
    assert statistic(values, "SampleCount") == (4, 4)
    assert statistic(values, "Minimum") == (1.0, 4) and statistic(values, "Maximum") == (10.0, 4)
    assert statistic(values, "p50") == (2.0, 4) and statistic(values, "p99") == (10.0, 4)
    summary = Sample(count=10, total=50.0, low=1.0, high=9.0, value=None)
    assert statistic([summary, values[0]], "Average") == (51.0 / 11, 11)
    assert statistic([summary], "p90") is None  # a statistic set hides the values a percentile needs
    assert statistic([], "Average") is None
    for samples in (values, []):
        with pytest.raises(NotEvaluated, match="tm90"):
            statistic(samples, "tm90")
    with pytest.raises(NotEvaluated, match="anomaly"):
        Rule("LessThanLowerOrGreaterThanUpperThreshold", 0, 1, 1)
