"""The saved local cloud end to end (`devenv up -d` / `down` on a stack of its own): a changed assembly
updates the restored stack, a corrupt file is said and replaced by a fresh deploy, `up --fresh` ignores the
file and `down --volumes` deletes it. One stack through all of them; a plain second `up` restoring the
stack is the shared stack's down/up test (test_local_stack_e2e.py); the emulator's side of restore and
corrupt files is in tests/devenv/emulator/test_saved_cloud.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devenv.stack_names import STACK_NAME
from tests.local_stack import UP_TIMEOUT_S, Stack, deployed, run_devenv, running_stack
from tests.ports import free_port
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # several whole `up`s each


def generated(secrets: dict[str, str]) -> dict[str, str]:
    """Each secret's generated value: the password of a JSON one, else the whole string."""
    values = {}
    for name, value in secrets.items():
        try:
            values[name] = str(json.loads(value).get("password"))
        except (ValueError, AttributeError):
            values[name] = value
    return values


def saved_file(stack: Stack) -> Path:
    return Path(stack.env["DEVENV_STATE_DIR"]) / "data" / "saved-cloud.pickle"


def down(stack: Stack, *args: str) -> None:
    result = stack.devenv("down", *args, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


def up(stack: Stack, *args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    result = run_devenv(env or stack.env, "up", "-d", *args, timeout=UP_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, result.stderr


def serves_the_token(stack: Stack) -> None:
    """The token created before the first `down` (its row in the Postgres data) works through the ALB."""
    wait_for(lambda: stack.chat("after a restart")[0] == 200, 60)


def test_restore_update_corrupt_fresh_and_volumes_on_one_stack() -> None:
    """One stack through four restarts (a whole `up` costs half a minute on 2 cores): a changed assembly
    updates the restored stack, a corrupt file is said and replaced by a fresh deploy, `up --fresh` ignores
    the file, `down --volumes` deletes it. (A plain second `up` restoring it: the shared stack's down/up
    test in test_local_stack_e2e.py.)"""
    with running_stack({}) as stack:
        before = deployed(stack)
        assert before.status == "CREATE_COMPLETE"
        down(stack)
        assert saved_file(stack).exists()

        # another mock upstream port is another upstreamUrl in the CDK context: another assembly, an update
        moved = {**stack.env, "DEVENV_MOCK_UPSTREAM_PORT": str(free_port())}
        output, _ = up(stack, env=moved)
        assert "restored from the saved local cloud" not in output
        updated = deployed(stack)
        assert updated.stack_id == before.stack_id and updated.status == "UPDATE_COMPLETE"
        new_events = {k: v for k, v in updated.events.items() if k not in before.events}
        assert (STACK_NAME, "UPDATE_COMPLETE") in new_events.values()
        assert (STACK_NAME, "CREATE_IN_PROGRESS") not in new_events.values()
        assert updated.secrets == before.secrets
        serves_the_token(stack)

        # a corrupt file: one warning, set aside, a fresh deploy whose generated values match the data
        down(stack)
        saved_file(stack).write_bytes(b"not a saved cloud")
        _, errors = up(stack)
        warnings = [line for line in errors.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1 and "saved local cloud" in warnings[0], errors
        assert "deploying from scratch" in warnings[0]
        fresh = deployed(stack)
        assert fresh.stack_id != before.stack_id and fresh.status == "CREATE_COMPLETE"
        # (a JSON secret also names the new cluster's id: the generated values are compared)
        assert generated(fresh.secrets) == generated(before.secrets)
        serves_the_token(stack)
        assert saved_file(stack).with_suffix(".unusable").exists()

        # --fresh: the file deleted, a fresh deploy
        down(stack)
        assert saved_file(stack).exists()
        output, _ = up(stack, "--fresh")
        assert "deleted the saved local cloud" in output
        assert "restored from the saved local cloud" not in output
        assert deployed(stack).stack_id not in (before.stack_id, fresh.stack_id)

        down(stack, "--volumes")
        assert not saved_file(stack).exists()
