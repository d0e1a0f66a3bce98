"""Process counters served as JSON (/metrics, upstream names) and Prometheus text (/metrics/prometheus)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field


@dataclass
class Counters:
    request_count: int = 0
    error_count: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_bypass: int = 0
    cache_stores: int = 0
    rate_limited: int = 0
    upstream_errors: int = 0
    client_disconnects: int = 0  # streams the client left before the end (upstream read stopped)
    in_flight: int = 0
    started_at: float = field(default_factory=time.monotonic)

    def snapshot(self, extra: dict[str, float]) -> dict[str, float]:
        values: dict[str, float] = {k: v for k, v in asdict(self).items() if k != "started_at"}
        values["uptime_seconds"] = round(time.monotonic() - self.started_at, 3)
        values.update(extra)
        return values


GAUGES = frozenset({"in_flight", "uptime_seconds", "events_buffered", "events_replay_window"})


def prometheus_text(values: dict[str, float]) -> str:
    lines = []
    for name, value in sorted(values.items()):
        kind = "gauge" if name in GAUGES else "counter"
        metric = f"llmproxy_{name}" + ("_total" if kind == "counter" else "")
        lines.append(f"# TYPE {metric} {kind}")
        lines.append(f"{metric} {value}")
    return "\n".join(lines) + "\n"
