"""Calling AWS from a failover action: what a refusal means (skip or failure) and what an action returns.

Shared by the actions (devenv.failover.actions) and their AWS FIS variants (devenv.failover.fis).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

# AWS error codes meaning "this resource cannot do that in its current shape": a skip, not an error.
CANNOT_PERFORM = {
    "InvalidDBClusterStateFault",
    "InvalidDBInstanceState",
    "InvalidReplicationGroupState",
    "InvalidCacheClusterState",
    "TestFailoverNotAvailableFault",
}


class ActionFailed(Exception):
    """An action the target refused or that did not reach its end state in time."""


@dataclass
class Outcome:
    status: Literal["done", "skipped"]
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def aws_call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Call the AWS API; CannotPerform for a wrong-state refusal, ActionFailed for any other."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", exc))
        if code in CANNOT_PERFORM:
            raise CannotPerform(f"{code}: {message}") from None
        raise ActionFailed(f"{exc.operation_name} refused: {code}: {message}") from None
    except BotoCoreError as exc:
        raise ActionFailed(f"AWS API call failed: {exc}") from None


class CannotPerform(Exception):
    """The target answered that the resource cannot do this (kept as the skip reason)."""
