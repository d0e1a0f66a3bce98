"""The figures of an experiment, from what the load and the health probe recorded (pure functions).

Recovery: the hypothesis holds again at the first passing health sample after the last sign of trouble
(a failing health sample or a failed request, at or after the injection), and keeps holding to the end of
the load. recovery_s = that moment - injection. When the last health sample fails, there is no recovery.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from devenv.failover.load import HealthSample, Request


def p99(latencies: Sequence[float]) -> float | None:
    """Nearest-rank 99th percentile in ms (None for no samples)."""
    if not latencies:
        return None
    ordered = sorted(latencies)
    return round(ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)], 2)


@dataclass
class Window:
    requests: int
    failed: int
    p99_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.failed / self.requests if self.requests else 0.0


def window(requests: Sequence[Request], start: float, end: float | None = None) -> Window:
    """Requests started in [start, end): their count, failures and p99 (of the successful ones' latency
    and the failed ones' time to failure alike, as a user waits for both)."""
    chosen = [r for r in requests if r.start >= start and (end is None or r.start < end)]
    return Window(len(chosen), sum(r.failed for r in chosen), p99([r.latency_ms for r in chosen]))


def recovered_at(
    injected: float, samples: Sequence[HealthSample], requests: Sequence[Request]
) -> float | None:
    """When the hypothesis holds again for good (seconds since t0), or None if it never did."""
    after = [s for s in samples if s.t >= injected]
    if not after or not after[-1].ok:
        return None
    trouble = [s.t for s in after if not s.ok]
    trouble += [r.end for r in requests if r.failed and r.end >= injected]
    last_trouble = max(trouble, default=None)
    if last_trouble is None:
        return injected
    passing = [s.t for s in after if s.ok and s.t > last_trouble]
    return min(passing) if passing else None


def health_failure(samples: Sequence[HealthSample]) -> str | None:
    """The first health sample that did not hold, as the breach names it (None when all held)."""
    if not samples:
        return "no health sample was taken"
    failed = next((s for s in samples if not s.ok), None)
    if failed is None:
        return None
    answer = f"{failed.status} {failed.body_status or ''}".strip() if failed.status else "no answer"
    return f"the health probe failed at {failed.t:g} s ({answer})"


def hypothesis_breaches(
    health_failed: str | None, load: Window, max_error_rate: float, max_p99_ms: float, phase: str
) -> list[str]:
    """What of the steady-state hypothesis does not hold in a window (empty when it holds)."""
    breaches = []
    if health_failed:
        breaches.append(f"{phase}: {health_failed}")
    if load.requests == 0:
        breaches.append(f"{phase}: the background load got no answer at all")
    elif load.error_rate > max_error_rate:
        breaches.append(
            f"{phase}: error rate {load.error_rate:.2%} > {max_error_rate:.2%} ({load.failed}/{load.requests})"
        )
    if load.p99_ms is not None and load.p99_ms > max_p99_ms:
        breaches.append(f"{phase}: p99 {load.p99_ms:.0f} ms > {max_p99_ms:.0f} ms")
    return breaches
