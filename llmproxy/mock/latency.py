"""Latency distributions in milliseconds, written as specs (`50`, `lognormal:400:0.3`).

Standard library only: devenv validates its mock-upstream settings with this same parser.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Latency:
    """A latency distribution in milliseconds: fixed, uniform, normal, exponential or lognormal."""

    kind: str
    a: float = 0.0
    b: float = 0.0

    KINDS: ClassVar[dict[str, int]] = {
        "fixed": 1,
        "uniform": 2,
        "normal": 2,
        "exponential": 1,
        "lognormal": 2,
    }

    @classmethod
    def parse(cls, spec: str) -> Latency:
        """`50`, `fixed:50`, `uniform:LO:HI`, `normal:MEAN:SD`, `exponential:MEAN`, `lognormal:MED:SIGMA`."""
        text = spec.strip()
        kind, _, rest = text.partition(":") if ":" in text else ("fixed", "", text)
        if kind not in cls.KINDS:
            raise ValueError(
                f"unknown latency distribution {kind!r} in {spec!r}; use one of {', '.join(cls.KINDS)}"
            )
        parts = rest.split(":") if rest else []
        if len(parts) != cls.KINDS[kind]:
            raise ValueError(
                f"latency {kind!r} takes {cls.KINDS[kind]} number(s) separated by ':', got {spec!r}"
            )
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"latency {spec!r} holds a value that is not a number") from None
        if any(n < 0 or not math.isfinite(n) for n in numbers):
            raise ValueError(f"latency {spec!r}: values must be finite and >= 0")
        if kind == "uniform" and numbers[0] > numbers[1]:
            raise ValueError(f"latency {spec!r}: the low bound is above the high bound")
        return cls(kind, *numbers)

    def sample(self, rng: random.Random) -> float:
        """One draw in milliseconds, never negative."""
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.uniform(self.a, self.b)
        elif self.kind == "normal":
            value = rng.gauss(self.a, self.b)
        elif self.kind == "exponential":
            value = rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        else:
            value = self.a * math.exp(rng.gauss(0.0, self.b))
        return max(0.0, value)
