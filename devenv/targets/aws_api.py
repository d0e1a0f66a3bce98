"""The AWS APIs of a target, as one client factory: the emulator `devenv up` runs (local) or the user's
own credentials (aws). Failover actions and the run reports call AWS through it, the same code on both.

local: the emulator's URL and credentials from the state dir (`devenv up` records them); its
`/_devenv/clock` says how it keeps time. aws: the default boto3 session (its credentials and region).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devenv.errors import TargetError
from devenv.runtime.state import StateDir

CLOCK_PATH = "/_devenv/clock"


@dataclass(frozen=True)
class AwsApi:
    name: str  # local | aws
    make_client: Callable[[str], Any]
    emulator: str | None = None  # the local cloud's URL; None on AWS

    def time_scale(self) -> float:
        """The target's clock factor: 1 on AWS; the emulator's `time_scale` locally (GET /_devenv/clock).
        A TargetError when the emulator does not say."""
        if self.emulator is None:
            return 1.0
        url = self.emulator.rstrip("/").replace("//localhost", "//127.0.0.1") + CLOCK_PATH
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return float(json.loads(response.read())["time_scale"])
        except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
            raise TargetError(f"the emulator's clock ({url}) did not answer: {exc}") from None


def connect(target: str, state: StateDir, region: str | None) -> AwsApi:
    """The target's AWS APIs; TargetError (exit 2) when the local stack has no emulator."""
    if target == "aws":
        import boto3

        session = boto3.session.Session(region_name=region) if region else boto3.session.Session()
        return AwsApi("aws", session.client)
    snapshot = state.read()
    services: dict[str, Any] = snapshot.get("services") or {}
    aws_env = (snapshot.get("facts") or {}).get("aws_env") or {}
    emulator = aws_env.get("AWS_ENDPOINT_URL") or (services.get("emulator") or {}).get("url")
    if not emulator:
        raise TargetError(
            "the local stack has no emulator", "start the whole stack with `devenv up -d` (not --infra-only)"
        )

    def make_client(service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=emulator,
            region_name=aws_env.get("AWS_REGION") or region or "us-east-1",
            aws_access_key_id=aws_env.get("AWS_ACCESS_KEY_ID", "test"),
            aws_secret_access_key=aws_env.get("AWS_SECRET_ACCESS_KEY", "test"),
        )

    return AwsApi("local", make_client, str(emulator))
