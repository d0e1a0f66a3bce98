"""The emulator's clock factor: `time_scale` (devenv's setting, passed as DEVENV_TIME_SCALE).

Every period, evaluation window and cooldown the emulator applies is divided by it, so a 15-minute
scale-in shows in 90 s at 10. Metric timestamps stay real, so a Sum or SampleCount over a compressed
period counts 1/time_scale of what the same traffic gives over the AWS period: the alarm evaluator
multiplies those two statistics by time_scale, keeping thresholds in their per-period meaning
(Average, Minimum, Maximum and percentiles need no correction).
"""

from __future__ import annotations

import math
import os

ENV = "DEVENV_TIME_SCALE"  # devenv.services.emulator sets it from the setting


class BadTimeScale(ValueError):
    """DEVENV_TIME_SCALE holds a value the setting refuses; the message says which and what is allowed."""


def parse(raw: str | None) -> float:
    """The factor from the variable's text (unset: 1, AWS's own timing). The setting bounds it further
    (devenv.config); here it only has to compress time, not stretch it."""
    if raw is None or not raw.strip():
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1):
        raise BadTimeScale(
            f"{ENV}={raw!r} is not a valid time_scale: use a number of at least 1 (1 = AWS's timing)"
        )
    return value


_factor = 1.0


def from_env() -> float:
    return parse(os.environ.get(ENV))


def factor() -> float:
    return _factor


def set_factor(value: float) -> None:
    """Set once, at the emulator's start."""
    global _factor
    _factor = value


def seconds(aws_seconds: float) -> float:
    """A duration as the emulator applies it: AWS's duration divided by time_scale."""
    return aws_seconds / _factor
