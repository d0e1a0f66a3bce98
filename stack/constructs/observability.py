"""Alarms (ALB 5xx rate, unhealthy hosts, proxy CPU, Aurora ACU/connections, Redis memory/evictions),
an optional SNS email subscription, and one dashboard."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stack.config import StackProps

ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: StackProps,
        load_balancer: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
        proxy_service: ecs.FargateService,
        dispatcher_service: ecs.FargateService,
        database: rds.DatabaseCluster,
        redis_member_ids: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic: sns.Topic | None = None
        if props.alarm_email:
            self.topic = sns.Topic(self, "AlarmTopic", display_name="LLM proxy alarms", enforce_ssl=True)
            self.topic.add_subscription(subscriptions.EmailSubscription(props.alarm_email))

        requests = load_balancer.metrics.request_count(period=ONE_MINUTE)
        elb_5xx = load_balancer.metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=ONE_MINUTE)
        target_5xx = load_balancer.metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=ONE_MINUTE
        )
        error_rate = cloudwatch.MathExpression(
            expression="IF(requests > 0, 100 * (FILL(elb, 0) + FILL(target, 0)) / requests, 0)",
            using_metrics={"requests": requests, "elb": elb_5xx, "target": target_5xx},
            label="5xx rate (%)",
            period=ONE_MINUTE,
        )
        unhealthy = target_group.metrics.unhealthy_host_count(period=ONE_MINUTE, statistic="Maximum")
        proxy_cpu = proxy_service.metric_cpu_utilization(period=ONE_MINUTE)
        capacity = database.metric_serverless_database_capacity(period=FIVE_MINUTES, statistic="Maximum")
        connections = database.metric_database_connections(period=FIVE_MINUTES, statistic="Maximum")
        redis_memory = [
            self._redis_metric("DatabaseMemoryUsagePercentage", member, "Maximum")
            for member in redis_member_ids
        ]
        redis_evictions = [self._redis_metric("Evictions", member, "Sum") for member in redis_member_ids]

        self._alarm("Alb5xxRate", error_rate, 5, 3, "ALB 5xx responses above 5% of requests for 3 minutes")
        self._alarm("UnhealthyHosts", unhealthy, 0, 3, "a proxy target has been unhealthy for 3 minutes")
        self._alarm(
            "ProxyCpuHigh", proxy_cpu, 85, 5, "proxy CPU above 85% for 5 minutes (scaling maxed out?)"
        )
        self._alarm(
            "AuroraCapacityHigh",
            capacity,
            props.aurora_max_capacity * 0.9,
            3,
            "Aurora above 90% of auroraMaxCapacity for 15 minutes",
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        )
        self._alarm(
            "AuroraConnectionsHigh",
            connections,
            props.aurora_max_capacity * 100,
            3,
            "Aurora connections above 100 per max ACU for 15 minutes",
        )
        for index, (memory, evictions) in enumerate(zip(redis_memory, redis_evictions, strict=True)):
            self._alarm(f"RedisMemoryHigh{index + 1}", memory, 80, 3, "Redis memory above 80% for 15 minutes")
            self._alarm(f"RedisEvictions{index + 1}", evictions, 0, 1, "Redis evicted keys (cache too small)")

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Requests", left=[requests], right=[error_rate], width=12),
            cloudwatch.GraphWidget(
                title="Latency (target response time)",
                left=[
                    load_balancer.metrics.target_response_time(period=ONE_MINUTE, statistic=stat)
                    for stat in ("p50", "p99")
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Proxy tasks",
                left=[proxy_cpu, proxy_service.metric_memory_utilization(period=ONE_MINUTE)],
                right=[
                    target_group.metrics.healthy_host_count(period=ONE_MINUTE),
                    unhealthy,
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Dispatcher",
                left=[
                    dispatcher_service.metric_cpu_utilization(period=ONE_MINUTE),
                    dispatcher_service.metric_memory_utilization(period=ONE_MINUTE),
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Aurora", left=[capacity], right=[connections], width=12),
            cloudwatch.GraphWidget(title="Redis", left=redis_memory, right=redis_evictions, width=12),
        )

    @staticmethod
    def _redis_metric(name: str, member_id: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/ElastiCache",
            metric_name=name,
            dimensions_map={"CacheClusterId": member_id},
            statistic=statistic,
            period=FIVE_MINUTES,
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        periods: int,
        description: str,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        if self.topic is not None:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
        return alarm
