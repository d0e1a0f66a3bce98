"""Counting requests: samples of response times, their windows and the figures thresholds read.

A `Sample` mirrors what Locust keeps per request type (counts and response times bucketed in
milliseconds), so that a window (this second, this ramp step) is the difference of two snapshots and
its percentiles are exact for that window, computed the way Locust computes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PERCENTILES = {"p50_ms": 0.50, "p90_ms": 0.90, "p95_ms": 0.95, "p99_ms": 0.99}


@dataclass
class Sample:
    """Requests, failures and response times (bucket in ms -> count) of one request type or a window."""

    requests: int = 0
    failures: int = 0
    total_ms: float = 0.0
    response_times: Counter[int] = field(default_factory=Counter)

    @classmethod
    def of(cls, requests: int, failures: int, total_ms: float, response_times: Mapping[int, int]) -> Sample:
        return cls(
            requests, failures, total_ms, Counter({int(k): int(v) for k, v in response_times.items() if v})
        )

    def copy(self) -> Sample:
        return Sample(self.requests, self.failures, self.total_ms, Counter(self.response_times))

    def plus(self, other: Sample) -> Sample:
        return Sample(
            self.requests + other.requests,
            self.failures + other.failures,
            self.total_ms + other.total_ms,
            self.response_times + other.response_times,
        )

    def minus(self, earlier: Sample) -> Sample:
        """What happened since `earlier` (a snapshot of the same counter)."""
        times = Counter(self.response_times)
        times.subtract(earlier.response_times)
        return Sample(
            self.requests - earlier.requests,
            self.failures - earlier.failures,
            self.total_ms - earlier.total_ms,
            Counter({k: v for k, v in times.items() if v > 0}),
        )

    def percentile(self, fraction: float) -> float:
        """The response time at `fraction` (0..1), Locust's rule: walk down from the slowest bucket."""
        counted = sum(self.response_times.values())
        if counted == 0:
            return 0.0
        allowed_above = int(counted * fraction)
        seen = 0
        for bucket in sorted(self.response_times, reverse=True):
            seen += self.response_times[bucket]
            if counted - seen <= allowed_above:
                return float(bucket)
        return 0.0

    def figures(self, seconds: float) -> dict[str, float]:
        """requests, failures, error_rate, rps, avg/max and percentile latencies over `seconds`."""
        result = {
            "requests": float(self.requests),
            "failures": float(self.failures),
            "error_rate": self.failures / self.requests if self.requests else 0.0,
            "rps": self.requests / seconds if seconds > 0 else 0.0,
            "avg_ms": self.total_ms / self.requests if self.requests else 0.0,
            "max_ms": float(max(self.response_times, default=0)),
        }
        result.update({name: self.percentile(q) for name, q in PERCENTILES.items()})
        return result


def combined(samples: Iterable[Sample]) -> Sample:
    total = Sample()
    for sample in samples:
        total = total.plus(sample)
    return total
