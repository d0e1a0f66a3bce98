"""Where a run's report points for the dashboard: the page `up` serves at the run's window (whole
minutes), or the command that opens it; and no served page while nothing runs."""

from __future__ import annotations

from devenv.runtime.state import StateDir
from devenv.targets import dashboard_link
from tests.conftest import reachable_tmpdir


def test_the_window_widens_to_whole_minutes() -> None:
    assert dashboard_link.window(1_767_225_630.5, 1_767_225_700.2) == (1_767_225_600, 1_767_225_720)
    assert dashboard_link.window(1_767_225_600.0, 1_767_225_660.0) == (1_767_225_600, 1_767_225_660)


def test_a_served_page_is_linked_at_the_window_else_the_command_is_named() -> None:
    local = dashboard_link.at_window("local", "http://127.0.0.1:8090/", 1_767_225_630, 1_767_225_700)
    assert local["url"] == "http://127.0.0.1:8090/?start=1767225600&end=1767225720"
    assert dashboard_link.line(local) == f"dashboard at this run's window: {local['url']}"
    aws = dashboard_link.at_window("aws", None, 1_767_225_630, 1_767_225_700)
    assert aws["url"] is None
    assert aws["command"] == "devenv dashboard --target aws --start 1767225600 --end 1767225720"
    assert dashboard_link.line(aws) == f"dashboard at this run's window: run `{aws['command']}`"


def test_no_page_is_served_while_devenv_is_not_running() -> None:
    assert dashboard_link.served(StateDir(reachable_tmpdir("devenv-dashboard-link-"))) is None
