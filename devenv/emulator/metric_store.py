"""PutMetricData's datums filed by series for the alarm evaluator, and pruned to a retention.

moto keeps every datum of a region in one list (`CloudWatchBackend.metric_data`) and scans it on each read.
Each put here also files its datums by series (namespace, metric name, dimension set) in time order, so
an alarm evaluation reads only its window. Datums older than the retention are dropped from both, so the
emulator's memory stays bounded: 3 hours (the dashboards' window) of AWS time, i.e. divided by time_scale,
never less than 10 minutes; AWS itself keeps 15 days.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import CloudWatchBackend, MetricAggregatedDatum, MetricDatumBase

from devenv.emulator import time_scale
from devenv.emulator.alarm_rules import Sample

RETENTION_S = 3 * 3600
MIN_RETENTION_S = 600

SeriesKey = tuple[str, str, frozenset[tuple[str, str]]]
_lock = threading.Lock()


@dataclass(order=True)
class Stored:
    at: float  # epoch seconds
    unit: str | None = field(compare=False)
    sample: Sample = field(compare=False)


def retention_s() -> float:
    return max(MIN_RETENTION_S, RETENTION_S / time_scale.factor())


def epoch(moment: datetime) -> float:
    """moto keeps naive UTC datetimes."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def series_key(namespace: str, name: str, dimensions: Iterable[Any]) -> SeriesKey:
    """A series is its namespace, name and exact dimension set (moto Dimension objects or API dicts)."""
    pairs = (
        (d["Name"], d["Value"]) if isinstance(d, dict) else (str(d.name), str(d.value)) for d in dimensions
    )
    return namespace, name, frozenset(pairs)


def _sample(datum: MetricDatumBase) -> Sample:
    if isinstance(datum, MetricAggregatedDatum):
        single = datum.min if datum.min == datum.max else None
        return Sample(datum.sample_count, datum.sum, datum.min, datum.max, single)
    value = float(datum.value)  # type: ignore[attr-defined]
    return Sample(1.0, value, value, value, value)


def _index(backend: CloudWatchBackend) -> dict[SeriesKey, list[Stored]]:
    """Kept on the backend, so moto's reset (a new backend) drops it too."""
    index: dict[SeriesKey, list[Stored]] | None = getattr(backend, "_devenv_series", None)
    if index is None:
        index = {}
        backend._devenv_series = index  # type: ignore[attr-defined]
    return index


def _file(backend: CloudWatchBackend, datums: Iterable[MetricDatumBase]) -> None:
    index = _index(backend)
    for datum in datums:
        stored = Stored(epoch(datum.timestamp), datum.unit, _sample(datum))
        series = index.setdefault(series_key(datum.namespace, datum.name, datum.dimensions), [])
        if not series or series[-1].at <= stored.at:
            series.append(stored)
        else:  # an older timestamp than the last: keep the series in time order
            bisect.insort(series, stored)


def window(
    backend: CloudWatchBackend, key: SeriesKey, start: float, end: float, unit: str | None
) -> list[Stored]:
    """The series' datums with start <= timestamp < end (of `unit` when the alarm names one)."""
    with _lock:
        series = _index(backend).get(key, [])
        low = bisect.bisect_left(series, start, key=lambda s: s.at)
        high = bisect.bisect_left(series, end, key=lambda s: s.at)
        found = series[low:high]
    return found if unit is None else [s for s in found if (s.unit or "None") == unit]


def prune(backends: Iterable[CloudWatchBackend], now: float) -> None:
    """Drop datums older than the retention, from the index and from moto's own list."""
    cutoff = now - retention_s()
    with _lock:
        for backend in backends:
            backend.metric_data = [d for d in backend.metric_data if epoch(d.timestamp) >= cutoff]
            index = _index(backend)
            for key in list(index):
                series = index[key]
                del series[: bisect.bisect_left(series, cutoff, key=lambda s: s.at)]
                if not series:
                    del index[key]


def filing(original: Callable[..., None]) -> Callable[..., None]:
    """moto's PutMetricData, then each new datum filed by series."""

    def put_metric_data(self: CloudWatchBackend, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        with _lock:
            before = len(self.metric_data)
            original(self, namespace, metric_data)
            _file(self, self.metric_data[before:])

    return put_metric_data
