"""Where a target's LLM Proxy answers and which management token it takes: `local` or `aws`.

local: `--url`/`DEVENV_TARGET_URL`, else what the running `devenv up` serves (the ALB mirror, or the
proxy itself while the realizer does not put a load balancer in front); the token from
`--management-token`/`MANAGEMENT_TOKEN`, else the stack's secret in the emulator (behind the ALB
mirror), else the native proxy's generated one.
aws: the `LlmProxyStack` outputs (`AlbUrl`, `ManagementTokenSecretArn`) and Secrets Manager.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from devenv.errors import TargetError, UsageError
from devenv.runtime.state import StateDir
from devenv.stack_names import SECRETS, STACK_NAME

URL_OUTPUT = "AlbUrl"
TOKEN_SECRET_OUTPUT = "ManagementTokenSecretArn"
TOKEN_SECRET_NAME = SECRETS["management-token"]
# Services of `devenv up` that front the proxy, most faithful first.
LOCAL_FRONTS = ("alb", "load-balancer", "loadbalancer", "caddy", "proxy")


class Target(StrEnum):
    """Where a command acts: the local cloud of `devenv up`, or AWS with the user's own credentials."""

    local = "local"
    aws = "aws"


@dataclass(frozen=True)
class Endpoint:
    url: str
    management_token: str | None
    source: str  # how the URL was found, for messages


def resolve(
    target: Target,
    state: StateDir,
    url: str | None = None,
    management_token: str | None = None,
    region: str | None = None,
) -> Endpoint:
    if target not in {t.value for t in Target}:
        raise UsageError(f"unknown target {target!r}", f"use one of: {', '.join(Target)}")
    target = Target(target)
    url = url or os.environ.get("DEVENV_TARGET_URL") or None
    token = management_token or os.environ.get("MANAGEMENT_TOKEN") or None
    if target is Target.aws:
        return _aws(url, token, region)
    if url:
        return Endpoint(url.rstrip("/"), token or _local_token(state), "--url")
    found = _local_front(state)
    if found is None:
        raise TargetError(
            f"no local target: `devenv up` is not running (state dir {state.root}) and no --url was given",
            "start the stack with `devenv up -d`, or pass --url / DEVENV_TARGET_URL",
        )
    name, front_url = found
    if token is None and name == "alb":  # the realized stack: its tasks read the emulator's secret
        token = _emulator_token(state, region)
    return Endpoint(front_url.rstrip("/"), token or _local_token(state), f"the {name} of `devenv up`")


def _local_front(state: StateDir) -> tuple[str, str] | None:
    if not state.supervisor_running():
        return None
    services: dict[str, Any] = state.read().get("services", {})
    for name in LOCAL_FRONTS:
        url = (services.get(name) or {}).get("url")
        if url:
            return name, url
    return None


def _local_token(state: StateDir) -> str | None:
    """The management token `devenv up` generated for the local stack, if there is one."""
    try:
        values = json.loads((state.run / "secrets.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    token = values.get("MANAGEMENT_TOKEN") if isinstance(values, dict) else None
    return str(token) if token else None


def _emulator_token(state: StateDir, region: str | None) -> str | None:
    """The management token secret of the stack deployed to the local cloud, read as the ECS agent would."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    snapshot = state.read()
    aws_env = (snapshot.get("facts") or {}).get("aws_env") or {}
    endpoint = aws_env.get("AWS_ENDPOINT_URL") or (
        (snapshot.get("services") or {}).get("emulator") or {}
    ).get("url")
    if not endpoint:
        return None
    client = boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=aws_env.get("AWS_REGION") or region or "us-east-1",
        aws_access_key_id=aws_env.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=aws_env.get("AWS_SECRET_ACCESS_KEY", "test"),
    )
    try:
        return str(client.get_secret_value(SecretId=TOKEN_SECRET_NAME)["SecretString"])
    except (ClientError, BotoCoreError):
        return None


def _aws(url: str | None, token: str | None, region: str | None) -> Endpoint:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session(region_name=region) if region else boto3.session.Session()
    try:
        outputs: dict[str, str] = {}
        if not url or not token:
            stacks = session.client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"]
            outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        if not url:
            url = outputs.get(URL_OUTPUT)
            if not url:
                raise TargetError(
                    f"stack {STACK_NAME} has no output {URL_OUTPUT}",
                    "deploy the current stack with `devenv deploy --target aws`, or pass --url",
                )
        if not token:
            arn = outputs.get(TOKEN_SECRET_OUTPUT)
            if not arn:
                raise TargetError(
                    f"stack {STACK_NAME} has no output {TOKEN_SECRET_OUTPUT}",
                    "deploy the current stack, or pass --management-token / MANAGEMENT_TOKEN",
                )
            token = session.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    except ClientError as exc:
        raise TargetError(
            f"cannot read the aws target: {exc.response.get('Error', {}).get('Message', exc)}",
            f"check your AWS credentials and region, and that {STACK_NAME} is deployed",
        ) from None
    except BotoCoreError as exc:
        raise TargetError(
            f"cannot read the aws target: {exc}", "configure AWS credentials and a region"
        ) from None
    return Endpoint(url.rstrip("/"), token, f"stack {STACK_NAME}")
