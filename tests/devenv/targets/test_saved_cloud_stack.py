"""The saved local cloud end to end (`devenv up -d` / `down` on a stack of its own): a second `up` restores
the stack instead of deploying it, a changed assembly updates the restored stack, a corrupt file is said
and replaced by a fresh deploy, `up --fresh` ignores the file and `down --volumes` deletes it. One stack
through all of them; the emulator's side of restore and corrupt files is in
tests/devenv/emulator/test_saved_cloud.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from devenv.runtime.ports import free_port
from tests.local_stack import UP_TIMEOUT_S, Stack, run_devenv, running_stack
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]  # several whole `up`s each
STACK = "LlmProxyStack"


@dataclass(frozen=True)
class Deployed:
    """What the emulator holds of the stack."""

    stack_id: str
    status: str
    events: dict[str, tuple[str, str]]  # event id -> (logical id, resource status)
    secrets: dict[str, str]


def deployed(stack: Stack) -> Deployed:
    cfn = stack.client("cloudformation")
    described = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    events = {
        e["EventId"]: (e["LogicalResourceId"], e["ResourceStatus"])
        for page in cfn.get_paginator("describe_stack_events").paginate(StackName=STACK)
        for e in page["StackEvents"]
    }
    sm = stack.client("secretsmanager")
    secrets = {
        s["Name"]: sm.get_secret_value(SecretId=s["ARN"])["SecretString"]
        for s in sm.list_secrets()["SecretList"]
    }
    return Deployed(described["StackId"], described["StackStatus"], events, secrets)


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
    """One stack through five restarts (a whole `up` costs half a minute on 2 cores): a second `up` restores
    it, a changed assembly updates it, a corrupt file is said and replaced by a fresh deploy, `up --fresh`
    ignores the file, `down --volumes` deletes it."""
    with running_stack({}) as stack:
        before = deployed(stack)
        assert before.status == "CREATE_COMPLETE"
        down(stack)
        assert saved_file(stack).exists()

        # restored: not one CloudFormation event, the same stack id and secret values
        output, _ = up(stack)
        assert "restored from the saved local cloud" in output
        restored = deployed(stack)
        assert restored.stack_id == before.stack_id
        assert restored.events == before.events
        assert restored.secrets == before.secrets
        serves_the_token(stack)

        # another mock upstream port is another upstreamUrl in the CDK context: another assembly, an update
        down(stack)
        moved = {**stack.env, "DEVENV_MOCK_UPSTREAM_PORT": str(free_port())}
        output, _ = up(stack, env=moved)
        assert "restored from the saved local cloud" not in output
        updated = deployed(stack)
        assert updated.stack_id == before.stack_id and updated.status == "UPDATE_COMPLETE"
        new_events = {k: v for k, v in updated.events.items() if k not in before.events}
        assert (STACK, "UPDATE_COMPLETE") in new_events.values()
        assert (STACK, "CREATE_IN_PROGRESS") not in new_events.values()
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
