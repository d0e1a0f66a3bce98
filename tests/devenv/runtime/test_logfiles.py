"""A log's tail in an error message shows the failed start's lines, not an earlier run's."""

from __future__ import annotations

from pathlib import Path

from devenv.runtime.logfiles import marker, tail


def test_tail_starts_at_the_last_start_marker(tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    log.write_text(
        marker("starting service: one") + "first run\n" + marker("starting service: two") + "second run\n"
    )
    shown = tail(log)
    assert shown.splitlines()[0].endswith("starting service: two ---") and shown.endswith("second run")
    assert "first run" not in shown


def test_tail_of_a_log_without_markers_is_its_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "locust.log"
    log.write_text("".join(f"line {n}\n" for n in range(30)))
    assert tail(log, 3) == "line 27\nline 28\nline 29"
    assert tail(tmp_path / "missing.log") == ""
