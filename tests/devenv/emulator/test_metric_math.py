"""The metric math alarms use, computed per period (the stack's 5xx-rate alarm is the first case)."""

from __future__ import annotations

import pytest

from devenv.emulator.alarm_rules import NotEvaluated
from devenv.emulator.metric_math import evaluate, names, parse

ERROR_RATE = "IF(requests > 0, 100 * (FILL(elb, 0) + FILL(target, 0)) / requests, 0)"


def test_the_stacks_error_rate_expression() -> None:
    node = parse(ERROR_RATE)
    assert names(node) == {"requests", "elb", "target"}
    assert evaluate(node, {"requests": 200.0, "elb": 4.0, "target": 6.0}) == 5.0
    assert evaluate(node, {"requests": 200.0}) == 0.0  # no 5xx datapoint: FILL makes it 0
    assert evaluate(node, {"requests": 0.0, "elb": 1.0}) == 0.0
    assert evaluate(node, {"elb": 3.0}) is None  # no request datapoint: the period is missing


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("2 ^ 3 ^ 2", 512.0),
        ("-m + 10", 6.0),
        ("m >= 4 AND m < 5", 1.0),
        ("m > 4 || m == 4", 1.0),
        ("ABS(0 - m)", 4.0),
        ("IF(m > 10, 1)", None),
        ("m / 0", None),
        ("missing * 2", None),
    ],
)
def test_arithmetic_and_missing_periods(expression: str, expected: float | None) -> None:
    assert evaluate(parse(expression), {"m": 4.0}) == expected


@pytest.mark.parametrize(
    ("expression", "named"),
    [
        ("RATE(m)", "RATE"),
        ("FILL(m, REPEAT)", "REPEAT"),
        ("SEARCH('{AWS/EC2} CPU', 'Average', 60)", "cannot read"),
        ("m +", "unexpected"),
        ("IF(m)", "IF takes"),
    ],
)
def test_what_is_not_evaluated_is_named(expression: str, named: str) -> None:
    with pytest.raises(NotEvaluated, match=named):
        parse(expression)
