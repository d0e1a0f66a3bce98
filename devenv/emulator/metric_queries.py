"""CloudWatch's metric queries as CloudWatch answers them, where moto's differ: a metric is its namespace,
its name and its exact set of dimensions.

- GetMetricStatistics returns only the datapoints published with exactly the dimensions asked for.
  moto's matched every datapoint carrying them among others: RequestCount {LoadBalancer} also summed the
  {LoadBalancer, TargetGroup} datapoints an ALB publishes for the same requests (each request twice).
- ListMetrics lists each metric once. moto's test for "same dimensions" compared every dimension with
  every other, so a metric with two or more dimensions was listed once per datapoint (and its search
  for duplicates grew with the square of the datapoints). The dimension filter stays: ListMetrics lists
  every metric having the dimensions named, as CloudWatch does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.cloudwatch.models import CloudWatchBackend, MetricDatumBase, Statistics


def same_dimensions(datum: MetricDatumBase, dimensions: list[dict[str, Any]]) -> bool:
    """Whether `datum` was published with exactly `dimensions` (names and values, in any order)."""
    wanted = sorted((d["Name"], d.get("Value")) for d in dimensions)
    return sorted((d.name, d.value) for d in datum.dimensions) == wanted


def get_filtered_metrics(
    self: CloudWatchBackend, metric_name: str, namespace: str, dimensions: list[dict[str, str]]
) -> list[MetricDatumBase]:
    """One datum of each metric (namespace, name, dimension set) matching the filters, in first-seen order."""
    seen: set[tuple[str, str, frozenset[tuple[str | None, str | None]]]] = set()
    found = []
    for datum in self.get_all_metrics():
        key = (datum.namespace, datum.name, frozenset((d.name, d.value) for d in datum.dimensions))
        if key not in seen and datum.filter(namespace=namespace, name=metric_name, dimensions=dimensions):
            seen.add(key)
            found.append(datum)
    return found


def exact_statistics(original: Callable[..., list[Statistics]]) -> Callable[..., list[Statistics]]:
    """moto's GetMetricStatistics, keeping only the datapoints with exactly the dimensions asked for."""

    def get_metric_statistics(
        self: CloudWatchBackend,
        namespace: str,
        metric_name: str,
        start_time: Any,
        end_time: Any,
        period: int,
        stats: list[str],
        dimensions: list[dict[str, str]],
        unit: str | None = None,
    ) -> list[Statistics]:
        periods = original(
            self, namespace, metric_name, start_time, end_time, period, stats, dimensions, unit
        )
        for statistics in periods:  # each period's statistics are computed from its data when read
            statistics.metric_data = [md for md in statistics.metric_data if same_dimensions(md, dimensions)]
        return [statistics for statistics in periods if statistics.metric_data]

    return get_metric_statistics
