"""Alarm criteria: the schema refuses what cannot be checked; the check reads the alarm's state history."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from devenv.failover.alarm_checks import check
from devenv.failover.experiment import AlarmCriterion

NAME = "LlmProxyStack-ObservabilityUnhealthyHosts1-ABC"


def alarm(*transitions: tuple[float, str, str], start: str = "OK") -> dict[str, Any]:
    return {
        "name": NAME,
        "period_s": 60,
        "evaluation_periods": 3,
        "state_at_start": start,
        "transitions": [{"t": t, "from": a, "to": b} for t, a, b in transitions],
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"name_contains": "X"},
        {"name_contains": "X", "never": "ALARM", "back_to": "OK", "within_s": 5},
        {"name_contains": "X", "back_to": "OK"},
        {"name_contains": "X", "never": "ALARM", "within_s": 5},
        {"name_contains": "X", "never": "BROKEN"},
        {"name_contains": "X", "reaches": "ALARM", "never": "OK"},
        {"name_contains": "X", "reaches": "ALARM", "within_s": 5},
    ],
)
def test_a_criterion_that_cannot_be_checked_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AlarmCriterion.model_validate(fields)


def test_back_to_ok_is_judged_at_within_s_divided_by_time_scale() -> None:
    back = AlarmCriterion(name_contains="UnhealthyHosts", back_to="OK", within_s=600)
    history = alarm((20, "OK", "ALARM"), (40, "ALARM", "OK"))
    breaches, [result] = check([back], [history], injected_s=10, end_s=60, time_scale=30)
    assert result["judged_at_s"] == 30.0 and result["state"] == "ALARM" and not result["ok"]
    assert breaches == [f"alarm {NAME} was ALARM at 30.0 s (back to OK within 600 s)"]
    breaches, [result] = check([back], [history], injected_s=10, end_s=60, time_scale=20)
    assert breaches == [] and result["state"] == "OK"  # judged at 10 + 600 / 20 = 40 s
    assert "the run ended before 70.0 s" in check([back], [history], 10, 60, 10)[0][0]


def test_never_alarm_breaks_on_a_transition_after_the_injection_or_a_state_already_there() -> None:
    never = AlarmCriterion(name_contains="Unhealthy", never="ALARM")
    assert check([never], [alarm((5, "OK", "ALARM"), (8, "ALARM", "OK"))], 10, 60, 30)[0] == []
    assert check([never], [alarm((20, "OK", "ALARM"))], 10, 60, 30)[0] == [
        f"alarm {NAME} was ALARM at 20.0 s (never ALARM)"
    ]
    assert check([never], [alarm(start="ALARM")], 10, 60, 30)[0] == [
        f"alarm {NAME} was ALARM at 10.0 s (never ALARM)"
    ]


def test_reaches_alarm_needs_a_transition_after_the_injection() -> None:
    reaches = AlarmCriterion(name_contains="Unhealthy", reaches="ALARM")
    breaches, [result] = check([reaches], [alarm((20, "OK", "ALARM"), (40, "ALARM", "OK"))], 10, 60, 30)
    assert breaches == [] and result["reached_at_s"] == 20
    for history in (alarm((5, "OK", "ALARM")), alarm(start="ALARM"), alarm((70, "OK", "ALARM"))):
        assert check([reaches], [history], 10, 60, 30)[0] == [
            f"alarm {NAME} never went to ALARM after the injection (reaches ALARM)"
        ]


def test_unreadable_or_missing_alarms_are_breaches_and_a_short_run_is_noted() -> None:
    never = AlarmCriterion(name_contains="Unhealthy", never="ALARM")
    assert "could not be read" in check([never], None, 10, 60, 1)[0][0]
    assert (
        "no such alarm"
        in check([AlarmCriterion(name_contains="Nope", never="ALARM")], [alarm()], 10, 60, 1)[0][0]
    )
    breaches, [result] = check([never], [alarm()], 10, 40, 1)
    assert breaches == [] and "shorter than the alarm's window (180 s at time_scale 1)" in result["note"]
    assert "note" not in check([never], [alarm()], 10, 40, 30)[1][0]
