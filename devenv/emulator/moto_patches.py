"""Every change the emulator makes to moto's own objects, in one table, checked against the moto it runs.

moto has no extension points for what the emulator needs (strict CloudFormation, an ECS scheduler, alarm
state, fault hooks), so some of its functions and methods are replaced. Each replacement relies on the
original's name and parameters as they are in the moto version pyproject.toml pins (`>=5.2.5,<5.3`).
`install()` checks every one of them before it changes anything, and refuses to start, naming the patch
and the moto version, when moto no longer matches: an upgrade of moto fails loudly at start-up instead
of misbehaving quietly. The behaviour lives in the modules named in the table; only this module assigns
to moto's objects.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from devenv.emulator import (
    alarms,
    control,
    imported,
    metric_data,
    metric_queries,
    metric_store,
    scheduler,
    stacks,
    target_tracking,
    unimplemented,
)

TESTED_MOTO = "5.2"  # the minor series pyproject.toml pins, whose internals the table below records


@dataclass(frozen=True)
class Patch:
    """One attribute of moto replaced: `target` is its dotted name (module, then class and attribute)."""

    target: str
    why: str
    # Given moto's original (None for an addition), returns what takes its place.
    replacement: Callable[[Any], Any]
    # The original's parameters as the replacement relies on them; None: moto has no such attribute and
    # this adds it (it must stay absent: an implementation of moto's own is to be compared with ours).
    parameters: tuple[str, ...] | None
    needs: tuple[str, ...] = ()  # attributes the original must carry


class MotoMismatch(RuntimeError):
    """moto's internals differ from what a patch relies on (a moto version outside the tested range)."""


def wrap(factory: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The replacement calls moto's original: `factory(original)` builds it."""
    return factory


def replace(value: Any) -> Callable[[Any], Any]:
    """The replacement stands alone (moto's original, if any, is not called)."""
    return lambda _original: value


_CFN = "moto.cloudformation"
_ECS = "moto.ecs.models.EC2ContainerServiceBackend"
_CW = "moto.cloudwatch.models.CloudWatchBackend"
_STACK_CALL = ("self", "name", "template", "role_arn", "parameters", "tags")

PATCHES: tuple[Patch, ...] = (
    # -- CloudFormation (devenv.emulator.stacks) ------------------------------------------------------
    Patch(
        f"{_CFN}.parsing.get_model_list",
        "devenv's models join moto's (later entries replace moto's model of the same type)",
        wrap(stacks.model_list),
        (),
        needs=("__wrapped__",),
    ),
    Patch(
        f"{_CFN}.parsing.clean_json",
        "strict mode: an unimplemented Fn::GetAtt or a Ref without a physical id fails, not dropped",
        wrap(stacks.strict_clean_json),
        ("resource_json", "resources_map"),
    ),
    Patch(
        f"{_CFN}.parsing.parse_resource",
        "{{resolve:secretsmanager:...}} / {{resolve:ssm:...}} resolved in properties (create and update)",
        wrap(stacks.resolving_parse_resource),
        ("resource_json", "resources_map"),
    ),
    Patch(
        f"{_CFN}.parsing.parse_and_create_resource",
        "CREATE_IN_PROGRESS/COMPLETE/FAILED events per resource",
        wrap(stacks.recording_create),
        ("logical_id", "resource_json", "resources_map", "account_id", "region_name"),
    ),
    Patch(
        f"{_CFN}.parsing.parse_and_update_resource",
        "UPDATE events; a model without an update method is replaced, never stored as None",
        wrap(stacks.recording_update),
        ("logical_id", "resource_json", "resources_map", "account_id", "region_name"),
    ),
    Patch(
        f"{_CFN}.parsing.ResourceMap.parse_ssm_parameter",
        "a missing SSM-typed parameter is a ValidationError naming it (moto: AttributeError)",
        replace(stacks.parse_ssm_parameter),
        ("self", "value", "value_type"),
    ),
    Patch(
        f"{_CFN}.parsing.ResourceMap.update",
        "modified resources updated in dependency order, and those pointing at a replaced one too",
        replace(stacks.update_resource_map),
        ("self", "template", "parameters"),
    ),
    Patch(
        f"{_CFN}.parsing.ResourceMap._delete_resource",
        "types moto keeps on delete use devenv's deleters (else the VPC delete fails)",
        wrap(stacks.deleting_resource),
        ("self", "parsed_resource", "resource_json"),
    ),
    Patch(
        f"{_CFN}.models.Stack.create_resources",
        "a failing resource: CREATE_FAILED event and ROLLBACK_COMPLETE instead of an HTTP 500",
        wrap(stacks.failing_create_resources),
        ("self",),
    ),
    Patch(
        f"{_CFN}.models.Stack.update",
        "a failing update: UPDATE_FAILED event and UPDATE_ROLLBACK_COMPLETE instead of an HTTP 500",
        wrap(stacks.failing_update),
        ("self", "template", "role_arn", "parameters", "tags"),
    ),
    Patch(
        f"{_CFN}.models.Stack.delete",
        "a failing delete: DELETE_FAILED with its reason as an event, instead of an HTTP 500",
        wrap(stacks.failing_delete),
        ("self",),
    ),
    Patch(
        f"{_CFN}.models.ChangeSet.apply",
        "a change set gives the stack its template and Outputs (moto keeps none)",
        replace(stacks.change_set_apply),
        ("self",),
    ),
    Patch(
        f"{_CFN}.models.CloudFormationBackend.execute_change_set",
        "a failing change set rolls the stack back instead of an HTTP 500 after a reported success",
        wrap(stacks.failing_execute_change_set),
        ("self", "change_set_name", "stack_name"),
    ),
    Patch(
        f"{_CFN}.models.CloudFormationBackend.create_stack",
        "strict check and imported VPCs/zones first; a template error is a 400, never a 500",
        wrap(stacks.validating_template),
        (
            "self",
            "name",
            "template",
            "parameters",
            "notification_arns",
            "tags",
            "role_arn",
            "enable_termination_protection",
            "timeout_in_mins",
            "stack_policy_body",
        ),
    ),
    Patch(
        f"{_CFN}.models.CloudFormationBackend.update_stack",
        "strict check and imported VPCs/zones first; a template error is a 400, never a 500",
        wrap(stacks.validating_template),
        _STACK_CALL,
    ),
    Patch(
        f"{_CFN}.models.CloudFormationBackend.create_change_set",
        "strict check and imported VPCs/zones first; a template error is a 400, never a 500",
        wrap(stacks.validating_template),
        (
            "self",
            "stack_name",
            "change_set_name",
            "template",
            "parameters",
            "description",
            "change_set_type",
            "notification_arns",
            "tags",
            "role_arn",
        ),
    ),
    Patch(
        f"{_CFN}.models.CloudFormationBackend.delete_stack",
        "a stack whose delete failed stays visible by name (moto drops it from the list)",
        wrap(stacks.keeping_failed_deletes),
        ("self", "name_or_stack_id"),
    ),
    Patch(
        f"{_CFN}.models.CloudFormationBackend._resolve_update_parameters",
        "UsePreviousValue for a defaulted parameter (moto's KeyError made the SDK retry for ~49 s)",
        replace(stacks.resolve_update_parameters),
        ("self", "instance", "incoming_params"),
    ),
    # -- EC2 ids of an imported VPC (devenv.emulator.imported) ----------------------------------------
    Patch(
        "moto.ec2.models.vpcs.random_vpc_id",
        "an imported VPC is recorded under the id the template names",
        wrap(imported.drawing_pinned_id("vpc")),
        (),
    ),
    Patch(
        "moto.ec2.models.subnets.random_subnet_id",
        "an imported subnet is recorded under the id the template names",
        wrap(imported.drawing_pinned_id("subnet")),
        (),
    ),
    # -- ELBv2 target health, RDS and ElastiCache faults (devenv.emulator.control) --------------------
    Patch(
        "moto.elbv2.models.FakeTargetGroup.register",
        "targets keyed by address and port (tasks share 127.0.0.1), starting in 'initial'",
        replace(control.register_targets),
        ("self", "targets"),
    ),
    Patch(
        "moto.elbv2.models.FakeTargetGroup.deregister",
        "targets keyed by address and port (tasks share 127.0.0.1)",
        replace(control.deregister_targets),
        ("self", "targets"),
    ),
    Patch(
        "moto.elbv2.models.FakeTargetGroup.health_for",
        "DescribeTargetHealth reports what the ALB mirror observed, not always healthy",
        replace(control.observed_health),
        ("self", "target", "ec2_backend"),
    ),
    Patch(
        "moto.rds.models.RDSBackend.failover_db_cluster",
        "a failover becomes a real fault on the local Postgres (recorded for the realizer)",
        wrap(control.recording_failover),
        ("self", "db_cluster_identifier", "target_db_instance_identifier"),
    ),
    Patch(
        "moto.rds.models.RDSBackend.reboot_db_instance",
        "a reboot becomes a real fault on the local Postgres (recorded for the realizer)",
        wrap(control.recording_reboot),
        ("self", "db_instance_identifier"),
    ),
    Patch(
        "moto.elasticache.responses.ElastiCacheResponse.reboot_cache_cluster",
        "RebootCacheCluster, which moto lacks, as a fault on the local Redis",
        replace(control.elasticache_reboot_cache_cluster),
        None,
    ),
    Patch(
        "moto.elasticache.responses.ElastiCacheResponse.test_failover",
        "TestFailover, which moto lacks, as a fault on the local Redis",
        replace(control.elasticache_test_failover),
        None,
    ),
    # -- the ECS scheduler (devenv.emulator.scheduler) ------------------------------------------------
    Patch(
        f"{_ECS}.create_service",
        "the scheduler starts the service's tasks",
        wrap(scheduler.reconciling_after),
        (
            "self",
            "cluster_str",
            "service_name",
            "desired_count",
            "task_definition_str",
            "load_balancers",
            "scheduling_strategy",
            "tags",
            "deployment_controller",
            "launch_type",
            "service_registries",
            "platform_version",
            "propagate_tags",
            "network_configuration",
            "role_arn",
        ),
    ),
    Patch(
        f"{_ECS}.update_service",
        "the scheduler scales or rolls the service's tasks",
        wrap(scheduler.reconciling_after),
        ("self", "service_properties"),
    ),
    Patch(
        f"{_ECS}.delete_service",
        "the scheduler stops the service's tasks",
        wrap(scheduler.reconciling_after),
        ("self", "cluster_name", "service_name", "force"),
    ),
    Patch(
        f"{_ECS}.describe_tasks",
        "tasks as the scheduler last reconciled them",
        wrap(scheduler.reconciling_before),
        ("self", "cluster_str", "tasks"),
    ),
    Patch(
        f"{_ECS}.describe_services",
        "services as the scheduler last reconciled them",
        wrap(scheduler.reconciling_before),
        ("self", "cluster_str", "service_names_or_arns"),
    ),
    Patch(
        f"{_ECS}.list_tasks",
        "RUNNING tasks by default and serviceName honoured, as ECS lists them",
        wrap(scheduler.listing_as_ecs),
        (
            "self",
            "cluster_str",
            "container_instance",
            "family",
            "started_by",
            "service_name",
            "desiredStatus",
        ),
    ),
    Patch(
        f"{_ECS}.stop_task",
        "StopTask stops the local task and the scheduler replaces it",
        wrap(scheduler.stopping_local_tasks),
        ("self", "cluster_str", "task_str", "reason"),
    ),
    # -- CloudWatch metrics and alarms (metric_store, metric_queries, alarms) ---------------------------
    Patch(
        f"{_CW}.put_metric_data",
        "datums filed by series, so alarm evaluation reads only its window",
        wrap(metric_store.filing),
        ("self", "namespace", "metric_data"),
    ),
    Patch(
        f"{_CW}.get_metric_statistics",
        "a metric is its exact dimension set (moto summed the ALB's datapoints twice)",
        wrap(metric_queries.exact_statistics),
        (
            "self",
            "namespace",
            "metric_name",
            "start_time",
            "end_time",
            "period",
            "stats",
            "dimensions",
            "unit",
        ),
    ),
    Patch(
        f"{_CW}.get_metric_data",
        "GetMetricData with percentiles per aligned period and metric math (IF, FILL, ...), as the "
        "dashboard and reports read it (moto returns nothing for either)",
        replace(metric_data.get_metric_data),
        ("self", "queries", "start_time", "end_time", "scan_by"),
    ),
    Patch(
        f"{_CW}.get_filtered_metrics",
        "ListMetrics lists each metric once, in one pass (moto's grew with the square of the datapoints)",
        replace(metric_queries.get_filtered_metrics),
        ("self", "metric_name", "namespace", "dimensions"),
    ),
    Patch(
        f"{_CW}.put_metric_alarm",
        "a new alarm starts INSUFFICIENT_DATA, an update keeps its state; both go to the history",
        wrap(alarms.keeping_state),
        (
            "self",
            "name",
            "namespace",
            "metric_name",
            "comparison_operator",
            "evaluation_periods",
            "period",
            "threshold",
            "statistic",
            "description",
            "dimensions",
            "alarm_actions",
            "metric_data_queries",
            "datapoints_to_alarm",
            "extended_statistic",
            "ok_actions",
            "insufficient_data_actions",
            "unit",
            "actions_enabled",
            "treat_missing_data",
            "evaluate_low_sample_count_percentile",
            "threshold_metric_id",
            "rule",
            "tags",
        ),
    ),
    Patch(
        f"{_CW}.delete_alarms",
        "deletions go to the alarm history",
        wrap(alarms.recording_deletes),
        ("self", "alarm_names"),
    ),
    Patch(
        "moto.cloudwatch.models.Alarm.update_state",
        "SetAlarmState is a state change like any other, with its history and actions",
        replace(alarms.set_alarm_state),
        ("self", "reason", "reason_data", "state_value"),
    ),
    Patch(
        "moto.cloudwatch.responses.CloudWatchResponse.describe_alarm_history",
        "DescribeAlarmHistory, which moto lacks",
        replace(alarms.describe_alarm_history),
        None,
    ),
    # -- Application Auto Scaling (devenv.emulator.target_tracking) ----------------------------------
    Patch(
        "moto.applicationautoscaling.models.FakeApplicationAutoscalingPolicy.create_alarms",
        "ECS target tracking gets the alarms AWS creates (3 high datapoints, 15 low at 90 %)",
        wrap(target_tracking.managed_alarms),
        ("self",),
    ),
    Patch(
        "moto.applicationautoscaling.models.ApplicationAutoscalingBackend.deregister_scalable_target",
        "deregistering a target deletes its policies and their alarms, as on AWS",
        wrap(target_tracking.deleting_policies),
        ("self", "namespace", "r_id", "dimension"),
    ),
    Patch(
        "moto.applicationautoscaling.responses.ApplicationAutoScalingResponse.describe_scaling_activities",
        "DescribeScalingActivities, which moto answers with an HTML 500",
        replace(target_tracking.describe_scaling_activities),
        None,
    ),
    # -- every service (devenv.emulator.unimplemented) ------------------------------------------------
    Patch(
        "moto.core.responses.BaseResponse.call_action",
        "an action moto lacks answers 501 in the service's protocol, not an HTML 500 the SDK retries",
        wrap(unimplemented.answering_unimplemented),
        ("self",),
    ),
    Patch(
        "moto.backends.list_of_moto_modules",
        "read once: moto's server lists its package folder (~150 stat calls) on every request to route it",
        wrap(lambda original: functools.cache(lambda: tuple(original()))),
        (),
    ),
)

# moto's caches of the model list, emptied once devenv's models are in it.
MODEL_CACHES = (f"{_CFN}.parsing.get_model_map", f"{_CFN}.parsing.get_name_type_map")

_lock = threading.Lock()
_originals: dict[str, Any] = {}  # target -> moto's own, as found when the patches were installed


def moto_version() -> str:
    return version("moto")


def locate(target: str) -> tuple[Any, str]:
    """(owner, attribute name) of a dotted name: the longest importable module, then attributes."""
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:-1]:
            owner = getattr(owner, name, None)
            if owner is None:
                raise MotoMismatch(f"{target}: moto {moto_version()} has no {name}")
        return owner, parts[-1]
    raise MotoMismatch(f"{target}: no such module in moto {moto_version()}")


def installed(patch: Patch) -> bool:
    owner, name = locate(patch.target)
    return patch.target in _originals and getattr(owner, name, None) is not _originals[patch.target]


def mismatch(patch: Patch) -> str | None:
    """What about moto's original (before install) differs from what `patch` relies on; None: it matches."""
    try:
        owner, name = locate(patch.target)
    except MotoMismatch as problem:
        return str(problem)
    original = _originals[patch.target] if patch.target in _originals else getattr(owner, name, None)
    if patch.parameters is None:
        if original is not None:
            return "moto now has its own; compare it with devenv's and drop or keep the patch"
        return None
    if original is None:
        return "moto no longer has it"
    missing = [attribute for attribute in patch.needs if not hasattr(original, attribute)]
    if missing:
        return f"it no longer has {', '.join(missing)}"
    found = tuple(inspect.signature(original).parameters)
    if found != patch.parameters:
        return f"its parameters are now {found}, the patch relies on {patch.parameters}"
    return None


def check() -> None:
    """Every patch's original as the table records it, or one error naming each that differs."""
    problems = [f"{p.target} ({p.why}): {reason}" for p in PATCHES if (reason := mismatch(p)) is not None]
    for cache in MODEL_CACHES:
        owner, name = locate(cache)
        if not hasattr(getattr(owner, name, None), "cache_clear"):
            problems.append(f"{cache}: no longer an lru_cache (devenv's models would not be seen)")
    if problems:
        raise MotoMismatch(
            f"moto {moto_version()} does not match what the emulator's patches rely on (tested: "
            f"moto {TESTED_MOTO}.x, the range pyproject.toml pins):\n  "
            + "\n  ".join(problems)
            + "\nInstall the pinned moto (uv sync), or update devenv/emulator/moto_patches.py for this one."
        )


def install() -> None:
    """Check every patch, then apply them all (once per process; later calls do nothing)."""
    with _lock:
        if _originals:
            return
        check()
        for patch in PATCHES:
            owner, name = locate(patch.target)
            _originals[patch.target] = getattr(owner, name, None)
            setattr(owner, name, patch.replacement(_originals[patch.target]))
        for cache in MODEL_CACHES:
            owner, name = locate(cache)
            getattr(owner, name).cache_clear()
