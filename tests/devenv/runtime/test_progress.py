"""Progress steps as data: a later fact about a finished step keeps what the step said."""

from __future__ import annotations

from typing import Any

from devenv.cli.progress_view import transitions
from devenv.runtime.progress import Progress


def test_an_extended_step_keeps_its_detail_for_a_display_that_reads_it_late() -> None:
    """`up -d` prints a finished step with the detail it reads at its next look at the state file: a
    note added in between (autoscaling off, after a restore) must not replace what the step said."""
    snapshots: list[list[dict[str, Any]]] = []
    progress = Progress(("deploy",), snapshots.append)
    progress.start("deploy", "CloudFormation")
    running = {"progress": snapshots[-1]}
    progress.done("deploy", "restored from the saved local cloud: resources 3/3")
    progress.extend("deploy", "autoscaling off: dynamic scaling suspended (SuspendedState) for proxy")

    [line] = transitions(running, {"progress": snapshots[-1]})  # the display missed the first snapshot
    assert line.startswith("✓ deploy: restored from the saved local cloud: resources 3/3 · autoscaling off")
    [step] = progress.as_json()
    assert step["state"] == "done"


def test_extending_a_step_without_a_detail_gives_it_one() -> None:
    progress = Progress(("deploy",))
    progress.extend("deploy", "autoscaling off")
    assert progress.as_json()[0]["detail"] == "autoscaling off"
