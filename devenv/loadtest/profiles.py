"""Load profiles as data: how many users when, for smoke, step, spike, soak and ramp runs.

A profile has a default peak of users and a default length; `--users` and `--duration` override them.
`plan()` turns a profile into stages the Locust shape follows second by second.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    users: int
    duration_s: float


@dataclass(frozen=True)
class Stage:
    """Hold `users` (spawned at `spawn_rate` per second) until `end_s` seconds into the run."""

    end_s: float
    users: int
    spawn_rate: float
    label: str


PROFILES = {
    p.name: p
    for p in (
        Profile("smoke", "a few users for seconds: is everything answering?", users=5, duration_s=20),
        Profile("step", "four equal steps up to the peak", users=40, duration_s=120),
        Profile(
            "spike", "a baseline, a sudden spike to the peak, back to the baseline", users=60, duration_s=90
        ),
        Profile(
            "soak", "a steady load for a long time (leaks, drift, slow failures)", users=20, duration_s=1800
        ),
        Profile(
            "ramp",
            "more users every step until a threshold breaks: finds the max RPS",
            users=200,
            duration_s=300,
        ),
    )
}

RAMP_STEP_S = 10.0

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `5m`, `1h30m`, `2m30s`; ValueError naming the accepted forms."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not value or match is None or not any(match.groups()):
            raise ValueError(
                f"cannot read the duration {text!r}; write e.g. 20s, 5m, 1h30m or a number of seconds"
            )
        hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds <= 0:
        raise ValueError(f"the duration {text!r} must be longer than zero")
    return seconds


def plan(
    profile: str, users: int | None = None, duration_s: float | None = None, step_s: float = RAMP_STEP_S
) -> list[Stage]:
    """The stages of a run; `users` is the peak, `duration_s` the whole length (for ramp: the cap, in
    steps of `step_s`)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    base = PROFILES[profile]
    peak = users if users is not None else base.users
    length = duration_s if duration_s is not None else base.duration_s
    if peak < 1:
        raise ValueError("the number of users must be at least 1")
    if profile in ("smoke", "soak"):
        return [Stage(length, peak, float(peak), f"{peak} users")]
    if profile == "step":
        steps = 4
        return [
            Stage(
                length * (i + 1) / steps,
                max(1, math.ceil(peak * (i + 1) / steps)),
                max(1.0, peak / 4),
                f"step {i + 1}",
            )
            for i in range(steps)
        ]
    if profile == "spike":
        baseline = max(1, peak // 5)
        return [
            Stage(length * 0.4, baseline, float(baseline), "baseline"),
            Stage(length * 0.6, peak, float(peak), "spike"),
            Stage(length, baseline, float(peak), "recovery"),
        ]
    if step_s <= 0:
        raise ValueError("the ramp step must be longer than zero")
    steps = max(1, int(length // step_s))
    increment = max(1, math.ceil(peak / steps))
    return [
        Stage(step_s * (i + 1), min(peak, increment * (i + 1)), float(increment), f"ramp step {i + 1}")
        for i in range(steps)
    ]


def total_seconds(stages: list[Stage]) -> float:
    return stages[-1].end_s if stages else 0.0
