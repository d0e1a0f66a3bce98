"""A CloudWatch DashboardBody read as the console reads it: widgets on a 24-column grid, and for each
metric widget its series (a metric with its stat and period, or a metric-math expression), with label,
y-axis, visibility and colour.

The body's metric rows are CloudWatch's arrays: `[namespace, name, dim, value, ..., {options}]`, where
"." repeats the row above at that position, and `[{"expression": ..., "id": ..., ...}]` for math. The
widget's own `stat` and `period` are the defaults a row without them takes (CloudWatch's defaults:
Average over 300 s). A widget type the page does not draw (log, alarm status, ...) is kept with its kind,
so the page says it is not rendered instead of dropping it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from devenv.errors import TargetError

DEFAULT_STAT = "Average"
DEFAULT_PERIOD_S = 300


@dataclass(frozen=True)
class Series:
    id: str
    label: str
    period_s: int
    axis: str  # left | right
    visible: bool
    color: str | None = None
    stat: str | None = None  # a metric's statistic; None for an expression
    metric: dict[str, Any] | None = None  # GetMetricData's Metric: Namespace, MetricName, Dimensions
    expression: str | None = None


@dataclass(frozen=True)
class Widget:
    kind: str  # metric | text | any other CloudWatch widget type
    x: int
    y: int
    width: int
    height: int
    title: str
    properties: dict[str, Any]
    series: list[Series] = field(default_factory=list)


def parse(body: str) -> list[Widget]:
    """The body's widgets; TargetError when the body is not a dashboard CloudWatch would show."""
    try:
        document = json.loads(body)
        return [_widget(raw) for raw in document.get("widgets", [])]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise TargetError(f"the dashboard's body is not one CloudWatch reads: {exc}") from None


def _widget(raw: dict[str, Any]) -> Widget:
    properties = raw.get("properties", {})
    kind = raw.get("type", "metric")
    widget = Widget(
        kind=kind,
        x=int(raw.get("x", 0)),
        y=int(raw.get("y", 0)),
        width=int(raw.get("width", 6)),
        height=int(raw.get("height", 6)),
        title=str(properties.get("title", "")),
        properties=properties,
    )
    if kind == "metric":
        widget.series.extend(_series(properties))
    return widget


def _series(properties: dict[str, Any]) -> list[Series]:
    stat = properties.get("stat", DEFAULT_STAT)
    period = int(properties.get("period", DEFAULT_PERIOD_S))
    found: list[Series] = []
    previous: list[Any] = []
    for index, row in enumerate(properties.get("metrics", [])):
        options = row[-1] if row and isinstance(row[-1], dict) else {}
        values = row[:-1] if options else list(row)
        common: dict[str, Any] = {
            "id": str(options.get("id", f"m{index}")),
            "period_s": int(options.get("period", period)),
            "axis": str(options.get("yAxis", "left")),
            "visible": bool(options.get("visible", True)),
            "color": options.get("color"),
        }
        if "expression" in options:
            found.append(
                Series(
                    label=str(options.get("label", common["id"])), expression=options["expression"], **common
                )
            )
            continue
        values = [previous[i] if v == "." and i < len(previous) else v for i, v in enumerate(values)]
        previous = values
        namespace, name, *pairs = values
        metric = {
            "Namespace": namespace,
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in zip(pairs[::2], pairs[1::2], strict=True)],
        }
        series_stat = str(options.get("stat", stat))
        found.append(
            Series(
                label=str(options.get("label", f"{name} {series_stat}")),
                stat=series_stat,
                metric=metric,
                **common,
            )
        )
    return found


def queries(widget: Widget, time_scale: float) -> list[dict[str, Any]]:
    """GetMetricData queries for every series of the widget, hidden ones too (an expression reads them).
    Locally a period is compressed as the emulator's clock is: period / time_scale, at least 1 s."""
    found = []
    for series in widget.series:
        period = max(1, round(series.period_s / time_scale))
        if series.expression is not None:
            found.append(
                {"Id": series.id, "Expression": series.expression, "Label": series.label, "Period": period}
            )
        else:
            stat = {"Metric": series.metric, "Period": period, "Stat": series.stat}
            found.append({"Id": series.id, "MetricStat": stat, "Label": series.label})
    return found
