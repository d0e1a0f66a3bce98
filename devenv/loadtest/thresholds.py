"""Thresholds as data, and the verdict they give on a run's figures.

The file (`loadtests/thresholds.yaml`) holds a `default` table and optional per-profile tables that
override it key by key; each table maps a scope (`total`, or a request name as Locust reports it) to
limits. A run may override single limits with `SCOPE.METRIC=VALUE`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# metric -> (the figure it reads, "max" = the figure must stay at or below, "min" = at or above)
METRICS: dict[str, tuple[str, str]] = {
    "p50_ms": ("p50_ms", "max"),
    "p90_ms": ("p90_ms", "max"),
    "p95_ms": ("p95_ms", "max"),
    "p99_ms": ("p99_ms", "max"),
    "avg_ms": ("avg_ms", "max"),
    "max_ms": ("max_ms", "max"),
    "error_rate": ("error_rate", "max"),
    "min_rps": ("rps", "min"),
    "min_requests": ("requests", "min"),
}
TOTAL = "total"

Table = dict[str, dict[str, float]]


class ThresholdError(ValueError):
    """A thresholds file or override that cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class Threshold:
    scope: str
    metric: str
    limit: float

    @property
    def figure(self) -> str:
        return METRICS[self.metric][0]

    @property
    def is_lower_bound(self) -> bool:
        return METRICS[self.metric][1] == "min"

    def describe(self) -> str:
        op = ">=" if self.is_lower_bound else "<="
        return f"{self.scope} {self.figure} {op} {self.limit:g}"


@dataclass(frozen=True)
class Check:
    """One threshold against one measured value; `value` is None when that scope saw no request."""

    threshold: Threshold
    value: float | None

    @property
    def measured(self) -> bool:
        return self.value is not None

    @property
    def ok(self) -> bool:
        if self.value is None:
            return self.threshold.metric != "min_requests" or self.threshold.limit <= 0
        if self.threshold.is_lower_bound:
            return self.value >= self.threshold.limit
        return self.value <= self.threshold.limit

    @property
    def line(self) -> str:
        t = self.threshold
        if self.value is None:
            return f"{t.scope} {t.figure}: not measured (no request of this type), limit {t.limit:g}"
        verb = "below" if t.is_lower_bound else "above"
        state = "ok" if self.ok else f"{verb} the limit"
        return f"{t.scope} {t.figure} {self.value:.4g} ({state}; {t.describe()})"

    def as_dict(self) -> dict[str, Any]:
        t = self.threshold
        return {
            "scope": t.scope,
            "metric": t.metric,
            "limit": t.limit,
            "value": self.value,
            "ok": self.ok,
            "measured": self.measured,
            "line": self.line,
        }


def _table(raw: Any, where: str) -> Table:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ThresholdError(
            f"{where} must be a mapping of scope -> {{metric: limit}}, got {type(raw).__name__}"
        )
    table: Table = {}
    for scope, limits in raw.items():
        if not isinstance(limits, dict):
            raise ThresholdError(f"{where}.{scope} must be a mapping of metric -> limit")
        table[str(scope)] = {}
        for metric, limit in limits.items():
            table[str(scope)][str(metric)] = _limit(f"{where}.{scope}.{metric}", str(metric), limit)
    return table


def _limit(key: str, metric: str, value: Any) -> float:
    if metric not in METRICS:
        raise ThresholdError(f"unknown metric in {key}; use one of {', '.join(METRICS)}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ThresholdError(f"{key} must be a number, got {value!r}")
    if value < 0 or (metric == "error_rate" and value > 1):
        raise ThresholdError(f"{key} is out of range: {value!r} (error_rate is 0..1, others >= 0)")
    return float(value)


def merge(base: Table, override: Table) -> Table:
    merged = {scope: dict(limits) for scope, limits in base.items()}
    for scope, limits in override.items():
        merged.setdefault(scope, {}).update(limits)
    return merged


def load(path: Path, profile: str | None) -> Table:
    """The `default` table merged with the profile's own table."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ThresholdError(f"the thresholds file {path} does not exist") from None
    return parse(text, str(path), path.name, profile)


def parse(text: str, source: str, label: str, profile: str | None) -> Table:
    """`load` on the file's text: a Locust master of the load generator stack gets the run's thresholds as
    text with the swarm (`source` names where they came from in messages, `label` prefixes the keys)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ThresholdError(f"cannot parse the thresholds file {source}: {exc}") from None
    document = document or {}
    if not isinstance(document, dict) or set(document) - {"default", "profiles"}:
        raise ThresholdError(f"{source} must hold only the keys `default` and `profiles`")
    table = _table(document.get("default"), f"{label}: default")
    profiles = document.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise ThresholdError(f"{label}: profiles must map a profile name to its table")
    if profile and profile in profiles:
        table = merge(table, _table(profiles[profile], f"{label}: profiles.{profile}"))
    return table


def parse_override(text: str) -> tuple[str, str, float]:
    """`SCOPE.METRIC=VALUE` (the scope may hold spaces and colons, e.g. `chat: cache miss.p95_ms=300`)."""
    key, sep, raw = text.partition("=")
    scope, dot, metric = key.strip().rpartition(".")
    if not sep or not dot or not scope.strip():
        raise ThresholdError(
            f"cannot read the threshold override {text!r}; write SCOPE.METRIC=VALUE, e.g. total.p95_ms=250"
        )
    try:
        value = float(raw)
    except ValueError:
        raise ThresholdError(f"the threshold override {text!r} needs a number after '='") from None
    metric = metric.strip()
    return scope.strip(), metric, _limit(f"override {key.strip()}", metric, value)


def with_overrides(table: Table, overrides: Iterable[str]) -> Table:
    result = merge(table, {})
    for text in overrides:
        scope, metric, value = parse_override(text)
        result.setdefault(scope, {})[metric] = value
    return result


def dump(table: Table, path: Path) -> None:
    """Write an effective table in the file format (as `default`), for the run folder and Locust."""
    path.write_text(dumps(table))


def dumps(table: Table) -> str:
    """An effective table as the file's text (as `default`)."""
    return yaml.safe_dump({"default": table}, sort_keys=True)


def thresholds(table: Table) -> list[Threshold]:
    return [
        Threshold(scope, metric, limit) for scope, limits in table.items() for metric, limit in limits.items()
    ]


def evaluate(rules: Iterable[Threshold], figures: Mapping[str, Mapping[str, float]]) -> list[Check]:
    """Each rule against `figures[scope][figure]`; a scope with no figures is unmeasured."""
    checks = []
    for rule in rules:
        scope_figures = figures.get(rule.scope)
        measured = scope_figures is not None and scope_figures.get("requests", 0) > 0
        checks.append(Check(rule, float(scope_figures[rule.figure]) if measured and scope_figures else None))
    return checks


def breached(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]


def window_rules(rules: Iterable[Threshold]) -> list[Threshold]:
    """The rules that judge a window of a ramp (latency and errors; not throughput or counts)."""
    return [r for r in rules if r.metric not in ("min_rps", "min_requests")]
