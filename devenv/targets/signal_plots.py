"""The signals' plot panels (task count with scaling activities, healthy/unhealthy hosts, 5xx, alarm
states as coloured bands), drawn under a load-test or failover report's own panels, on its time axis."""

from __future__ import annotations

import itertools
from typing import Any

from devenv.targets.signals import state_at

PANELS = 4
HEIGHTS = [1.4, 1.0, 1.0, 1.2]
STATE_COLOURS = {"OK": "tab:green", "ALARM": "tab:red", "INSUFFICIENT_DATA": "lightgrey"}


def draw(axes: list[Any], signals: dict[str, Any], end_s: float) -> None:
    """Fill PANELS axes (sharing the report's x axis, seconds since the run's start)."""
    tasks_ax, hosts_ax, errors_ax, alarms_ax = axes
    metrics: dict[str, list[dict[str, float]]] = signals.get("metrics") or {}
    period = signals.get("period_s")
    scale = signals.get("time_scale")

    counts = signals.get("task_count") or []
    if counts:
        t = [c["t"] for c in counts]
        tasks_ax.step(
            t, [c["running"] for c in counts], where="post", color="tab:blue", label="running tasks"
        )
        tasks_ax.step(
            t, [c["desired"] for c in counts], where="post", color="tab:gray", ls="--", label="desired"
        )
    for activity in signals.get("scaling_activities") or []:
        tasks_ax.axvline(
            activity["t"], color="tab:purple" if activity["scaled"] else "tab:olive", lw=1.2, alpha=0.8
        )
        tasks_ax.annotate(
            activity["description"],
            (activity["t"], 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=6,
            rotation=90,
            va="top",
            ha="right",
        )
    if signals.get("scaling_activities"):
        tasks_ax.plot([], [], color="tab:purple", label="scaling activity")
    tasks_ax.set_ylabel("tasks")
    tasks_ax.set_ylim(
        bottom=0, top=max([c["desired"] for c in counts] + [c["running"] for c in counts] + [1]) + 1
    )
    cpu = metrics.get("cpu_percent") or []
    if cpu:
        cpu_ax = tasks_ax.twinx()
        cpu_ax.plot([p["t"] for p in cpu], [p["value"] for p in cpu], color="tab:orange", lw=1, label="CPU %")
        cpu_ax.set_ylabel("CPU %")
        cpu_ax.set_ylim(bottom=0)
        cpu_ax.legend(loc="upper right", fontsize=7)
    tasks_ax.legend(loc="lower right", fontsize=7)
    tasks_ax.set_title(
        f"proxy service, as the target reports it (time_scale {scale if scale is not None else '?'}; "
        f"CloudWatch points every {period} s)",
        fontsize=8,
    )

    for key, label, colour in (
        ("healthy_hosts", "HealthyHostCount (min)", "tab:green"),
        ("unhealthy_hosts", "UnHealthyHostCount (max)", "tab:red"),
    ):
        points = metrics.get(key) or []
        hosts_ax.step(
            [p["t"] for p in points], [p["value"] for p in points], where="post", color=colour, label=label
        )
    hosts_ax.set_ylabel("targets")
    hosts_ax.set_ylim(bottom=0)
    hosts_ax.legend(loc="upper left", fontsize=7)

    for key, label, colour in (
        ("elb_5xx", "HTTPCode_ELB_5XX_Count", "tab:red"),
        ("target_5xx", "HTTPCode_Target_5XX_Count", "tab:brown"),
    ):
        points = metrics.get(key) or []
        errors_ax.bar([p["t"] for p in points], [p["value"] for p in points], width=(period or 1) * 0.8,
                      align="edge", color=colour, alpha=0.7, label=label)  # fmt: skip
    errors_ax.set_ylabel(f"5xx per {period} s")
    errors_ax.set_ylim(
        bottom=0,
        top=max([p["value"] for k in ("elb_5xx", "target_5xx") for p in metrics.get(k) or []] + [1]) * 1.1,
    )
    errors_ax.legend(loc="upper left", fontsize=7)

    alarms = signals.get("alarms") or []
    for row, alarm in enumerate(alarms):
        edges = [0.0] + [c["t"] for c in alarm["transitions"] if 0 < c["t"] < end_s] + [end_s]
        for left, right in itertools.pairwise(edges):
            colour = STATE_COLOURS.get(state_at(alarm, left), "white")
            alarms_ax.barh(row, right - left, left=left, height=0.8, color=colour, alpha=0.8)
    alarms_ax.set_yticks(range(len(alarms)), [alarm_label(a) for a in alarms], fontsize=6)
    alarms_ax.set_ylim(-0.5, max(len(alarms), 1) - 0.5)
    from matplotlib.patches import Patch

    alarms_ax.legend(
        handles=[Patch(color=colour, label=state) for state, colour in STATE_COLOURS.items()],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=6,
        ncol=3,
    )
    if signals.get("errors"):
        alarms_ax.set_title("not read: " + "; ".join(signals["errors"])[:200], fontsize=7, color="tab:red")
    alarms_ax.set_xlabel("seconds since start")


def alarm_label(alarm: dict[str, Any]) -> str:
    """`LlmProxyStack-ObservabilityUnhealthyHosts1234-ABC` -> `UnhealthyHosts1234`; a target tracking
    alarm -> `TT <metric> High|Low`."""
    name = str(alarm["name"])
    if name.startswith("TargetTracking-"):
        kind = "High" if "-AlarmHigh-" in name else "Low"
        return f"TT {alarm.get('metric') or ''} {kind}"
    parts = name.split("-")
    middle = "-".join(parts[1:-1]) if len(parts) > 2 else name
    return middle.replace("Observability", "")[:28]
