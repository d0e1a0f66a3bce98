"""The report of a run: a PNG timeline (latency of every request, failures per second, health) with the
fault window shaded, and under it the target's own signals (task count, hosts, 5xx, alarm states),
beside the JSON journal, in the run folder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from devenv.failover.load import HealthSample, Request
from devenv.targets import signal_plots

TIMELINE_PNG = "timeline.png"


def write_timeline(
    run_dir: Path,
    journal: dict[str, Any],
    requests: list[Request],
    samples: list[HealthSample],
    signals: dict[str, Any] | None = None,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, len((signals or {}).get("alarms") or []))
    heights = [3.0, 1.0] + (
        [*signal_plots.HEIGHTS[:-1], max(signal_plots.HEIGHTS[-1], 0.25 * rows)] if signals else []
    )
    fig, axes = plt.subplots(
        len(heights), 1, figsize=(11, 2 * sum(heights)), sharex=True, height_ratios=heights
    )
    latency_ax, errors_ax = axes[0], axes[1]
    ok = [r for r in requests if not r.failed]
    bad = [r for r in requests if r.failed]
    latency_ax.scatter([r.start for r in ok], [r.latency_ms for r in ok], s=4, label="ok", color="tab:blue")
    latency_ax.scatter(
        [r.start for r in bad], [r.latency_ms for r in bad], s=10, label="failed", color="tab:red"
    )
    latency_ax.set_ylabel("latency (ms)")
    latency_ax.set_yscale("symlog", linthresh=10)
    failures = Counter(int(r.start) for r in bad)
    total = Counter(int(r.start) for r in requests)
    seconds = sorted(total)
    errors_ax.bar(seconds, [total[s] for s in seconds], width=0.9, color="lightgrey", label="requests/s")
    errors_ax.bar(
        seconds, [failures.get(s, 0) for s in seconds], width=0.9, color="tab:red", label="failed/s"
    )
    down = [s.t for s in samples if not s.ok]
    if down:
        errors_ax.scatter(down, [0] * len(down), marker="|", color="black", s=60, label="health failing")
    errors_ax.set_xlabel("seconds since start")
    end_s = max(
        [r.start for r in requests]
        + [s.t for s in samples]
        + [float((signals or {}).get("duration_s") or 1.0)]
    )
    if signals:
        signal_plots.draw(list(axes[2:]), signals, end_s)
    window = journal.get("fault_window_s")
    for ax in axes:
        if window:
            ax.axvspan(window[0], window[1], color="orange", alpha=0.25, label="fault window")
        if ax.get_legend_handles_labels()[0]:  # an aborted run has no fault window and no series
            ax.legend(loc="upper right", fontsize=7)
    latency_ax.set_title(
        f"{journal['experiment']} on {journal['target']}: {journal['verdict']}  "
        f"(failed {journal['failed_requests']}, recovery {journal['recovery_s']} s, "
        f"lost {journal['lost_events']}, duplicates {journal['duplicate_events']}; "
        f"time_scale {journal.get('time_scale')})",
        fontsize=9,
    )
    fig.tight_layout()
    path = run_dir / TIMELINE_PNG
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
