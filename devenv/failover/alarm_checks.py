"""An experiment's alarm criteria, checked against the alarms' state history over the run (pure functions).

`never`: the alarm is not in that state at the injection and enters it at no time up to the end of the
run. `reaches`: the alarm enters that state after the injection, up to the end of the run (a transition
in its history; being there already at the injection is not the fault's doing). `back_to`: the alarm is in that state at injection + within_s / time_scale (the runner lasts at least
that long). A criterion whose alarms could not be read, or that names no alarm, is a breach: it was not
met. When the run after the injection is shorter than an alarm's own window (period x evaluation periods,
divided by time_scale), the result says the check could not have seen a transition.
"""

from __future__ import annotations

from typing import Any

from devenv.failover.experiment import AlarmCriterion
from devenv.targets.signals import state_at


def deadline_s(criterion: AlarmCriterion, injected_s: float, time_scale: float) -> float | None:
    """When a back_to criterion is judged, in seconds since the run's start (None for `never`)."""
    if criterion.within_s is None:
        return None
    return injected_s + criterion.within_s / time_scale


def check(
    criteria: list[AlarmCriterion],
    alarms: list[dict[str, Any]] | None,
    injected_s: float,
    end_s: float,
    time_scale: float,
) -> tuple[list[str], list[dict[str, Any]]]:
    """(breaches, one result per criterion and matching alarm for the journal)."""
    breaches: list[str] = []
    results: list[dict[str, Any]] = []
    for criterion in criteria:
        if criterion.never:
            rule = f"never {criterion.never}"
        elif criterion.reaches:
            rule = f"reaches {criterion.reaches}"
        else:
            rule = f"back to {criterion.back_to} within {criterion.within_s:g} s"
        if alarms is None:
            breaches.append(
                f"alarm {criterion.name_contains!r} ({rule}): not checked, the alarms could not be read"
            )
            continue
        matched = [a for a in alarms if criterion.name_contains in a["name"]]
        if not matched:
            breaches.append(f"alarm {criterion.name_contains!r} ({rule}): the stack has no such alarm")
            continue
        for alarm in matched:
            result: dict[str, Any] = {"alarm": alarm["name"], "rule": rule, "ok": True}
            window = (alarm.get("period_s") or 60) * (alarm.get("evaluation_periods") or 1) / time_scale
            if end_s - injected_s < window:
                result["note"] = (
                    f"the run after the injection ({end_s - injected_s:.0f} s) is shorter than the alarm's window "
                    f"({window:.0f} s at time_scale {time_scale:g}): it could not change state on this fault"
                )
            if criterion.never:
                entered = [
                    c["t"]
                    for c in alarm["transitions"]
                    if c["to"] == criterion.never and injected_s <= c["t"] <= end_s
                ]
                if state_at(alarm, injected_s) == criterion.never:
                    entered.insert(0, injected_s)
                if entered:
                    result["ok"] = False
                    breaches.append(
                        f"alarm {alarm['name']} was {criterion.never} at {entered[0]:.1f} s ({rule})"
                    )
            elif criterion.reaches:
                reached = [
                    c["t"]
                    for c in alarm["transitions"]
                    if c["to"] == criterion.reaches and injected_s <= c["t"] <= end_s
                ]
                result["reached_at_s"] = reached[0] if reached else None
                if not reached:
                    result["ok"] = False
                    breaches.append(
                        f"alarm {alarm['name']} never went to {criterion.reaches} after the injection ({rule})"
                    )
            else:
                at = deadline_s(criterion, injected_s, time_scale) or 0.0
                state = state_at(alarm, min(at, end_s))
                result.update(judged_at_s=round(at, 3), state=state)
                if at > end_s:
                    result["ok"] = False
                    breaches.append(f"alarm {alarm['name']}: the run ended before {at:.1f} s ({rule})")
                elif state != criterion.back_to:
                    result["ok"] = False
                    breaches.append(f"alarm {alarm['name']} was {state} at {at:.1f} s ({rule})")
            results.append(result)
    return breaches, results
