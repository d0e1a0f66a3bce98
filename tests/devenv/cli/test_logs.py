"""`devenv logs` over real log files (the real command in a subprocess): by ECS service or process, the
last N lines (0 means none), --since, and the pruning of stopped tasks' logs. Following a task that
starts later is shown against a running stack in test_up_progress.py."""

from __future__ import annotations

import calendar
import os
import time
from pathlib import Path

from devenv.runtime import logfiles
from tests.devenv.cli.conftest import DevenvCli


def json_line(at: float, message: str) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(at))
    return f'{{"time":"{stamp}","level":"info","message":"{message}"}}'


def write_logs(state_dir: Path) -> float:
    """Two proxy tasks, one dispatcher task and Redis; each has an hour-old line and a fresh one."""
    now = time.time()
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for name in ("proxy-aaaaaaaa", "proxy-bbbbbbbb", "dispatcher-cccccccc"):
        (logs / f"{name}.log").write_text(
            f"{json_line(now - 3600, name + ' old')}\n{json_line(now - 5, name + ' new')}\n"
        )
    old, new = (time.strftime("%d %b %Y %H:%M:%S.000", time.localtime(at)) for at in (now - 3600, now - 5))
    (logs / "redis.log").write_text(f"1:M {old} * redis old\n1:M {new} * redis new\n")
    return now


def test_a_service_name_shows_every_task_prefixed(devenv_cli: DevenvCli) -> None:
    write_logs(devenv_cli.state_dir)
    done = devenv_cli.run("logs", "proxy", "-n", "1")
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith("proxy-aaaaaaaa | {") and first.endswith('"proxy-aaaaaaaa new"}')
    assert second.startswith("proxy-bbbbbbbb | {") and second.endswith('"proxy-bbbbbbbb new"}')


def test_tail_0_prints_nothing_and_a_process_name_prints_unprefixed(devenv_cli: DevenvCli) -> None:
    write_logs(devenv_cli.state_dir)
    none = devenv_cli.run("logs", "redis", "-n", "0")
    assert none.returncode == 0 and none.stdout == ""
    one = devenv_cli.run("logs", "redis", "-n", "1")
    assert one.stdout.endswith("* redis new\n") and "|" not in one.stdout


def test_since_keeps_only_recent_lines_merged_in_time_order(devenv_cli: DevenvCli) -> None:
    write_logs(devenv_cli.state_dir)
    done = devenv_cli.run("logs", "--since", "10m", "--tail", "100")
    assert done.returncode == 0, done.stderr
    assert "old" not in done.stdout
    assert {"proxy-aaaaaaaa new", "proxy-bbbbbbbb new", "dispatcher-cccccccc new", "redis new"} <= {
        line.split('"message":"')[-1].rstrip('"}') if '"message"' in line else line.rsplit("* ", 1)[-1]
        for line in done.stdout.splitlines()
    }
    everything = devenv_cli.run("logs", "--tail", "100")
    assert everything.stdout.count("old") == 4


def test_unknown_names_and_bad_since_are_usage_errors(devenv_cli: DevenvCli) -> None:
    write_logs(devenv_cli.state_dir)
    unknown = devenv_cli.run("logs", "nope")
    assert unknown.returncode == 2
    assert "dispatcher, proxy" in unknown.stderr and "redis" in unknown.stderr
    bad = devenv_cli.run("logs", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr and "Traceback" not in bad.stderr


def test_stopped_tasks_logs_beyond_the_last_few_are_pruned(tmp_path: Path) -> None:
    stopped = [tmp_path / f"proxy-{index:08x}.log" for index in range(8)]
    for age, path in enumerate(reversed(stopped)):  # stopped[0] is the oldest
        path.write_text("x\n")
        os.utime(path, (time.time() - age * 60, time.time() - age * 60))
    running = tmp_path / "proxy-ffffffff.log"
    running.write_text("x\n")
    os.utime(running, (0, 0))  # the oldest file of all, but its task runs
    own = tmp_path / "postgres.log"
    own.write_text("x\n")

    removed = logfiles.prune_stopped_tasks(tmp_path, running={"proxy-ffffffff"}, keep=5)

    assert sorted(removed) == sorted(stopped[:3])
    assert all(path.exists() for path in stopped[3:]) and running.exists() and own.exists()


def test_each_log_format_devenv_runs_has_its_time_read() -> None:
    at = time.mktime((2026, 12, 2, 9, 53, 37, 0, 0, -1))  # a local time
    utc = calendar.timegm((2026, 12, 2, 9, 53, 37, 0, 0, 0))
    assert logfiles.line_time("16522:C 02 Dec 2026 09:53:37.511 # Redis is starting") == at
    assert logfiles.line_time('127.0.0.1 - - [02/Dec/2026 09:53:37] "GET / HTTP/1.1" 200 -') == at
    assert logfiles.line_time("--- devenv 2026-12-02T09:53:37: starting redis ---") == at
    assert logfiles.line_time("2026-12-02 09:53:37.468 UTC [16552] LOG:  starting") == utc
    assert logfiles.line_time('{"time":"2026-12-02T09:53:37.123Z","message":"x"}') == utc
    assert logfiles.line_time('{"level":"warn","ts":1796205237.5}') == 1796205237.5
    assert logfiles.line_time("a line without a time") is None
