"""CloudWatch alarms, stored in moto's CloudWatch so DescribeAlarms returns them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from moto.cloudwatch.models import CloudWatchBackend, Metric, MetricDataQuery, MetricStat, cloudwatch_backends
from moto.cloudwatch.models import Dimension as MotoDimension

from devenv.emulator.models.base import DevenvModel, as_bool, as_int, required, tag_list


def backend(account_id: str, region_name: str) -> CloudWatchBackend:
    return cloudwatch_backends[account_id][region_name]


def metric_queries(metrics: Any) -> list[MetricDataQuery] | None:
    if not metrics:
        return None
    queries = []
    for metric in metrics:
        stat = metric.get("MetricStat")
        metric_stat = None
        if stat:
            inner = stat.get("Metric", {})
            metric_stat = MetricStat(
                metric=Metric(
                    metric_name=inner.get("MetricName"),
                    namespace=inner.get("Namespace"),
                    dimensions=[
                        MotoDimension(name=d["Name"], value=d["Value"]) for d in inner.get("Dimensions", [])
                    ],
                ),
                period=stat.get("Period"),
                stat=stat.get("Stat"),
                unit=stat.get("Unit"),
            )
        queries.append(
            MetricDataQuery(
                query_id=metric.get("Id"),
                label=metric.get("Label"),
                period=metric.get("Period"),
                return_data=metric.get("ReturnData"),
                expression=metric.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return queries


def _put_alarm(account_id: str, region_name: str, name: str, properties: Any) -> Any:
    kind = Alarm.TYPE
    return backend(account_id, region_name).put_metric_alarm(
        name=name,
        namespace=properties.get("Namespace"),
        metric_name=properties.get("MetricName"),
        metric_data_queries=metric_queries(properties.get("Metrics")),
        comparison_operator=required(properties, "ComparisonOperator", kind),
        evaluation_periods=int(required(properties, "EvaluationPeriods", kind)),
        datapoints_to_alarm=as_int(properties.get("DatapointsToAlarm")),
        period=cast(int, as_int(properties.get("Period"))),
        threshold=cast(
            float, float(properties["Threshold"]) if properties.get("Threshold") is not None else None
        ),
        statistic=properties.get("Statistic"),
        extended_statistic=properties.get("ExtendedStatistic"),
        description=properties.get("AlarmDescription"),
        dimensions=properties.get("Dimensions") or [],
        alarm_actions=properties.get("AlarmActions") or [],
        ok_actions=properties.get("OKActions") or [],
        insufficient_data_actions=properties.get("InsufficientDataActions") or [],
        unit=properties.get("Unit"),
        actions_enabled=as_bool(properties.get("ActionsEnabled", True)),
        treat_missing_data=properties.get("TreatMissingData"),
        evaluate_low_sample_count_percentile=properties.get("EvaluateLowSampleCountPercentile"),
        threshold_metric_id=properties.get("ThresholdMetricId"),
        tags=tag_list(properties),
    )


class Alarm(DevenvModel):
    """AWS::CloudWatch::Alarm; Ref is the alarm name. devenv.emulator.alarms evaluates it."""

    TYPE = "AWS::CloudWatch::Alarm"
    NAME_PROPERTY = "AlarmName"

    def __init__(self, account_id: str, region_name: str, alarm: Any) -> None:
        self.alarm = alarm
        self.physical_id = alarm.name

    def cfn_attributes(self) -> Mapping[str, Callable[[], Any]]:
        return {"Arn": lambda: self.alarm.alarm_arn}

    @classmethod
    def create_resource(
        cls, name: str, properties: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Alarm:
        name = properties.get("AlarmName") or name
        return cls(account_id, region_name, _put_alarm(account_id, region_name, name, properties))

    @classmethod
    def update_resource(
        cls, original: Alarm, name: str, properties: Any, account_id: str, region_name: str
    ) -> Alarm:
        name = properties.get("AlarmName") or original.physical_id
        if name != original.physical_id:
            original.delete(account_id, region_name)
        return cls(account_id, region_name, _put_alarm(account_id, region_name, name, properties))

    def delete(self, account_id: str, region_name: str) -> None:
        backend(account_id, region_name).delete_alarms([self.physical_id])
