"""CloudWatch's metric queries as CloudWatch answers them, where moto's differ: a metric is its namespace,
its name and its exact set of dimensions.

- GetMetricStatistics returns only the datapoints published with exactly the dimensions asked for.
  moto's matched every datapoint carrying them among others: RequestCount {LoadBalancer} also summed the
  {LoadBalancer, TargetGroup} datapoints an ALB publishes for the same requests (each request twice).
- ListMetrics lists each metric once. moto's test for "same dimensions" compared every dimension with
  every other, so a metric with two or more dimensions was listed once per datapoint. (Its dimension
  filter stays: ListMetrics lists every metric having the dimensions named, as CloudWatch does.)
"""

from __future__ import annotations

from typing import Any

from moto.cloudwatch import models
from moto.cloudwatch.models import CloudWatchBackend, Dimension, MetricDatumBase, Statistics

_MARK = "_devenv_exact_dimensions"


def same_dimensions(datum: MetricDatumBase, dimensions: list[dict[str, Any]]) -> bool:
    """Whether `datum` was published with exactly `dimensions` (names and values, in any order)."""
    wanted = sorted((d["Name"], d.get("Value")) for d in dimensions)
    return sorted((d.name, d.value) for d in datum.dimensions) == wanted


def are_dimensions_same(metric_dimensions: list[Dimension], dimensions: list[Dimension]) -> bool:
    """moto's helper, fixed: the same names with the same values, in any order."""
    return sorted((d.name, d.value) for d in metric_dimensions) == sorted(
        (d.name, d.value) for d in dimensions
    )


def install() -> None:
    """Patch moto's CloudWatch backend (idempotent)."""
    original = CloudWatchBackend.get_metric_statistics
    if getattr(original, _MARK, False):
        return

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

    setattr(get_metric_statistics, _MARK, True)
    CloudWatchBackend.get_metric_statistics = get_metric_statistics  # type: ignore[method-assign]
    models.are_dimensions_same = are_dimensions_same
