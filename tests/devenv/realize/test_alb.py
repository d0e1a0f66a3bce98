"""The ALB mirror's health-check timing under time_scale (pure)."""

from __future__ import annotations

import pytest

from devenv.realize.alb import MIN_HEALTH_CHECK_INTERVAL_S, health_check_timing


def test_aws_timing_is_kept_at_time_scale_1() -> None:
    assert health_check_timing(10, 5, 1) == (10, 5)


@pytest.mark.parametrize(
    ("interval", "timeout", "scale", "expected"),
    [
        (10, 5, 5, (2, 2)),  # divided, the timeout no longer than the interval
        (30, 5, 10, (3, 3)),
        (10, 5, 30, (MIN_HEALTH_CHECK_INTERVAL_S, MIN_HEALTH_CHECK_INTERVAL_S)),  # never below a second
        (10, 2, 2, (5, 2)),  # a timeout already short stays as it is
    ],
)
def test_a_compressed_clock_divides_the_interval_down_to_a_floor(
    interval: float, timeout: float, scale: float, expected: tuple[float, float]
) -> None:
    assert health_check_timing(interval, timeout, scale) == expected
