"""A run's report: plots (latency percentiles and RPS over time, failures marked) as PNG, one HTML
page holding them with the summary, and the rich table printed at the end of `devenv loadtest`."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from devenv.loadtest.summary import TIMELINE_FILE
from devenv.targets import dashboard_link, signal_plots

LATENCY_PNG = "latency.png"
THROUGHPUT_PNG = "throughput.png"
SIGNALS_PNG = "signals.png"
REPORT_HTML = "report.html"
VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "error": "bold red", "degraded": "bold yellow"}


def read_timeline(run_dir: Path) -> list[dict[str, float]]:
    try:
        timeline = json.loads((run_dir / TIMELINE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return list(timeline)


def write_plots(run_dir: Path, timeline: list[dict[str, float]]) -> list[Path]:
    """Two PNGs over the run's seconds; seconds with failures are shaded red on both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [p["t"] for p in timeline]
    failing = [p["t"] for p in timeline if p["failures_per_s"] > 0]

    def mark_failures(axis: Any) -> None:
        for second in failing:
            axis.axvspan(second - 1.0, second, color="red", alpha=0.15, lw=0)
        if failing:
            axis.plot([], [], color="red", alpha=0.3, lw=6, label="seconds with failures")

    fig, ax = plt.subplots(figsize=(10, 4.5))
    for key, label in (
        ("p50_ms", "p50"),
        ("p95_ms", "p95"),
        ("p99_ms", "p99"),
        ("first_token_p95_ms", "stream first token p95"),
    ):
        ax.plot(t, [p.get(key, 0.0) for p in timeline], label=label, lw=1.5)
    mark_failures(ax)
    ax.set(xlabel="seconds", ylabel="response time (ms)", title="Latency percentiles, per second")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    latency = run_dir / LATENCY_PNG
    fig.savefig(latency, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(t, [p["rps"] for p in timeline], label="requests/s", lw=1.5, color="tab:blue")
    ax.bar(
        t, [p["failures_per_s"] for p in timeline], width=0.8, color="red", label="failures/s", align="edge"
    )
    mark_failures(ax)
    ax.set(xlabel="seconds", ylabel="per second", title="Throughput, failures and users")
    ax.grid(alpha=0.3)
    users_axis = ax.twinx()
    users_axis.step(t, [p["users"] for p in timeline], where="post", color="tab:gray", ls="--", label="users")
    users_axis.set_ylabel("users")
    users_axis.set_ylim(bottom=0)
    lines, labels = ax.get_legend_handles_labels()
    more_lines, more_labels = users_axis.get_legend_handles_labels()
    ax.legend(lines + more_lines, labels + more_labels, loc="upper left")
    fig.tight_layout()
    throughput = run_dir / THROUGHPUT_PNG
    fig.savefig(throughput, dpi=100)
    plt.close(fig)
    return [latency, throughput]


def write_signals_plot(run_dir: Path, signals: dict[str, Any], duration_s: float) -> Path:
    """The target's own view of the run (task count, hosts, 5xx, alarm states), on the same seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, len(signals.get("alarms") or []))
    heights = [*signal_plots.HEIGHTS[:-1], max(signal_plots.HEIGHTS[-1], 0.25 * rows)]
    fig, axes = plt.subplots(
        signal_plots.PANELS, 1, figsize=(10, 2 * sum(heights)), sharex=True, height_ratios=heights
    )
    signal_plots.draw(list(axes), signals, max(duration_s, 1.0))
    axes[-1].set_xlim(0, max(duration_s, 1.0))
    fig.tight_layout()
    path = run_dir / SIGNALS_PNG
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_html(run_dir: Path, summary: dict[str, Any], plots: list[Path], locust_html: str | None) -> Path:
    """One page: verdict, figures, per-request-type table, breaches, failures, ramp, plots, links."""
    e = html.escape
    verdict = summary["verdict"]
    rows = "".join(
        "<tr>"
        + f"<td>{e(name)}</td><td>{e(figures.get('method', ''))}</td>"
        + "".join(
            f"<td>{figures[k]}</td>"
            for k in ("requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "max_ms")
        )
        + "</tr>"
        for name, figures in summary["request_types"].items()
    )
    checks = "".join(
        f"<li class={'ok' if c['ok'] else 'bad'}>{e(c['line'])}</li>" for c in summary.get("thresholds", [])
    )
    failures = "".join(
        f"<li>{e(f['method'])} {e(f['name'])}: {e(f['error'])} &times; {f['occurrences']}</li>"
        for f in summary.get("failure_details", [])
    )
    ramp = summary.get("ramp")
    ramp_html = ""
    if ramp:
        stopped = ramp.get("stopped_by")
        where = (
            f"stopped at {stopped['users']} users, {stopped['rps']} RPS ({e('; '.join(stopped['breached']))})"
            if stopped
            else "no threshold broke"
        )
        ramp_html = (
            f"<h2>Ramp</h2><p>max RPS within thresholds: <b>{ramp['max_rps']}</b> at {ramp['max_users']} users; "
            f"{where}</p>{_stages_table(ramp['steps'])}"
        )
    elif summary.get("stages"):
        ramp_html = (
            "<h2>Stages</h2><p>each stage on its own requests, against the thresholds that apply to a window "
            f"(the verdict judges the whole run)</p>{_stages_table(summary['stages'])}"
        )
    errors = "".join(f"<li>{e(line)}</li>" for line in summary.get("errors", []))
    worker_rows = "".join(
        f"<tr><td>worker {w['index']}</td><td>{w['pid']}</td><td>{w['requests']}</td>"
        f"<td class={'bad' if w['lost'] else 'ok'}>{e(w['exit'])}{' (died during the run)' if w['lost'] else ''}</td></tr>"
        for w in summary.get("workers") or []
        if "index" in w
    )
    workers_html = (
        f"<h2>Locust workers</h2><table><tr><th>worker</th><th>pid</th><th>requests</th><th>ended</th></tr>"
        f"{worker_rows}</table>"
        if worker_rows
        else ""
    )
    degraded = "".join(f"<li>{e(line)}</li>" for line in summary.get("degraded") or [])
    images = "".join(f'<p><img src="{e(p.name)}" alt="{e(p.stem)}"></p>' for p in plots)
    links = (
        f'<p><a href="{e(locust_html)}">Locust report</a> · <a href="summary.json">summary.json</a></p>'
        if locust_html
        else ""
    )
    dashboard = summary.get("dashboard")
    if dashboard and dashboard["url"]:
        dashboard_html = (
            f"<p>The stack's dashboard at this run's window: <a href=\"{e(dashboard['url'])}\">"
            f"{e(dashboard['url'])}</a></p>"
        )
    elif dashboard:
        dashboard_html = (
            f"<p>The stack's dashboard at this run's window: <code>{e(dashboard['command'])}</code></p>"
        )
    else:
        dashboard_html = ""
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Load test {e(_profile(summary))} — {e(verdict)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:right}}td:first-child{{text-align:left}}
.ok{{color:#070}}.bad{{color:#b00;font-weight:bold}}.pass{{color:#070}}.fail,.error{{color:#b00}}.degraded{{color:#a60}}img{{max-width:100%}}</style>
</head><body>
<h1>Load test: <span class="{e(verdict)}">{e(verdict.upper())}</span></h1>
<p>target {e(summary["target"])} ({e(summary["mode"])}), profile {e(_profile(summary))},
{summary["duration_s"]} s, {summary["requests"]} requests, {summary["failures"]} failures,
{summary["rps"]} RPS, p50 {summary["p50_ms"]} ms, p95 {summary["p95_ms"]} ms, p99 {summary["p99_ms"]} ms;
time_scale {e(str(summary.get("time_scale")))}</p>
{f"<p>{e(_load_generator(summary['load_generator']))}</p>" if summary.get("load_generator") else ""}
{f"<p class=bad>set-up error: {e(summary['setup_error'])}</p>" if summary.get("setup_error") else ""}
{f"<p class=bad>degraded: the load generator lost workers, so the load was less than planned (thresholds alone: {e(str(summary.get('threshold_verdict')))})</p><ul class=bad>{degraded}</ul>" if degraded and summary["verdict"] == "degraded" else ""}
{links}
{dashboard_html}
<h2>Request types</h2>
<table><tr><th>name</th><th>type</th><th>requests</th><th>failures</th><th>RPS</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>{rows}</table>
<h2>Thresholds</h2><ul>{checks or "<li>none evaluated over the whole run (a ramp judges each step)</li>"}</ul>
{ramp_html}
{workers_html}
<h2>Failures</h2><ul>{failures or "<li>none</li>"}</ul>
<h2>Over time</h2>{images or "<p>no timeline (the run did not start)</p>"}
{f"<h2>Not read</h2><ul class=bad>{errors}</ul>" if errors else ""}
</body></html>
"""
    path = run_dir / REPORT_HTML
    path.write_text(page)
    return path


def _stages_table(stages: list[dict[str, Any]]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(st['label'])}</td><td>{st['users']}</td><td>{st['rps']}</td><td>{st['p95_ms']}</td>"
        f"<td>{st['p99_ms']}</td><td>{st['error_rate']}</td><td class={'ok' if st['ok'] else 'bad'}>"
        f"{'ok' if st['ok'] else 'breached'}</td></tr>"
        for st in stages
    )
    return (
        "<table><tr><th>stage</th><th>users</th><th>RPS</th><th>p95</th><th>p99</th><th>error rate</th>"
        f"<th></th></tr>{rows}</table>"
    )


def write_report(run_dir: Path, summary: dict[str, Any]) -> Path:
    timeline = read_timeline(run_dir)
    plots = write_plots(run_dir, timeline) if timeline else []
    if summary.get("signals"):
        try:
            plots.append(write_signals_plot(run_dir, summary["signals"], float(summary["duration_s"])))
        except Exception as exc:  # a plot must not hide the verdict; say why it is missing
            summary.setdefault("errors", []).append(f"the signals plot failed: {type(exc).__name__}: {exc}")
    locust_html = "locust.html" if (run_dir / "locust.html").exists() else None
    return write_html(run_dir, summary, plots, locust_html)


def print_summary(console: Console, summary: dict[str, Any], run_dir: Path) -> None:
    table = Table(title=f"load test — {_profile(summary)} against {summary['target']} (times in ms)")
    table.add_column("request type", ratio=1, overflow="fold")
    for column in ("requests", "failures", "RPS", "p50", "p95", "p99", "max"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, f in summary["request_types"].items():
        label = f"{name} (metric)" if f.get("metric_only") else name
        table.add_row(
            label,
            str(f["requests"]),
            _failures(f["failures"]),
            *(f"{f[k]:g}" for k in ("rps", "p50_ms", "p95_ms", "p99_ms", "max_ms")),
        )
    table.add_section()
    table.add_row(
        "total",
        str(summary["requests"]),
        _failures(summary["failures"]),
        *(f"{summary[k]:g}" for k in ("rps", "p50_ms", "p95_ms", "p99_ms", "max_ms")),
        style="bold",
    )
    console.print(table)
    ramp = summary.get("ramp")
    if ramp:
        stopped = ramp.get("stopped_by")
        console.print(
            f"ramp: max {ramp['max_rps']} RPS within thresholds at {ramp['max_users']} users; "
            + (
                f"stopped at {stopped['users']} users ({stopped['rps']} RPS): "
                + "; ".join(stopped["breached"])
                if stopped
                else "no threshold broke"
            ),
            highlight=False,
        )
    elif summary.get("stages"):
        for st in summary["stages"]:
            console.print(
                f"stage {st['label']}: {st['users']} users, {st['rps']:g} RPS, p95 {st['p95_ms']:g} ms, "
                f"error rate {st['error_rate']:g}"
                + ("" if st["ok"] else f" [red](breached: {'; '.join(st['breached'])})[/]"),
                highlight=False,
            )
    for line in summary.get("breached", []):
        console.print(f"[red]breached:[/] {line}", highlight=False)
    if summary.get("load_generator"):
        console.print(_load_generator(summary["load_generator"]), highlight=False, markup=False)
    workers = [w for w in summary.get("workers") or [] if "index" in w]
    if workers:
        console.print(
            "requests per Locust worker: "
            + ", ".join(f"{w['index']}: {w['requests']}" + (" (died)" if w["lost"] else "") for w in workers),
            highlight=False,
        )
    for line in summary.get("degraded") or []:
        console.print(f"[yellow]degraded:[/] {line}", highlight=False)
    found = summary.get("signals") or {}
    for activity in found.get("scaling_activities") or []:
        console.print(
            f"scaling at {activity['t']:g} s: {activity['description']} ({activity['cause']})",
            highlight=False,
        )
    for line in summary.get("errors", []):
        console.print(f"[yellow]not read:[/] {line}", highlight=False)
    for failure in summary.get("failure_details", [])[:5]:
        console.print(
            f"[yellow]failure:[/] {failure['method']} {failure['name']}: {failure['error']} x{failure['occurrences']}",
            highlight=False,
        )
    if summary.get("dashboard"):
        console.print(dashboard_link.line(summary["dashboard"]), highlight=False, markup=False)
    verdict = summary["verdict"]
    console.print(
        f"verdict: [{VERDICT_STYLE[verdict]}]{verdict.upper()}[/]   report: {run_dir / REPORT_HTML}",
        highlight=False,
    )


def _load_generator(generator: dict[str, Any]) -> str:
    """A run through the load generator stack: which master, how many workers, where the results were."""
    return (
        f"load generator: the {generator['stack']} stack's Locust master ({generator['master']}) with "
        f"{generator['workers']} workers; results from {generator['results']}"
    )


def _profile(summary: dict[str, Any]) -> str:
    """A `--web` run has no profile: its users came from the UI."""
    return str(summary.get("profile") or "none (web UI)")


def _failures(count: int) -> str:
    return f"[red]{count}[/]" if count else "0"
