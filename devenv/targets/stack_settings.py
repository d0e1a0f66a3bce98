"""The stack's settings on a target: secrets in Secrets Manager, plain config in SSM Parameter Store.

The names are the ones the stack creates (devenv/stack_names.py). `local` is the emulator
(http://127.0.0.1:<emulator_port>, credentials test/test, the settings' region); `aws` the default boto3
credential chain, profile and region.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from devenv.config import Settings
from devenv.errors import ConfigError, DevenvError, NotRunningError, UsageError
from devenv.stack_names import PARAMETERS, SECRETS
from devenv.targets.endpoints import Target


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value.lower() in choices else f"must be one of {', '.join(choices)}"

    return check


def _non_negative_int(value: str) -> str | None:
    return None if value.isdigit() else "must be a whole number >= 0"


def _url(*schemes: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        pattern = rf"({'|'.join(schemes)})://[^\s/]+(/\S*)?"
        return None if re.fullmatch(pattern, value) else f"must be a {' or '.join(schemes)} URL"

    return check


# What each SSM parameter accepts (the app reads them as environment variables at task start).
PARAMETER_CHECKS: dict[str, Callable[[str], str | None]] = {
    "log-level": _one_of("debug", "info", "warning", "warn", "error"),
    "cache-enabled": _one_of("true", "false"),
    "rate-limit-rpm": _non_negative_int,
    "redis-url": _url("redis", "rediss"),
    "upstream-url": _url("http", "https"),
}


@dataclass(frozen=True)
class Store:
    """Boto3 clients for one target's Secrets Manager and SSM."""

    target: Target
    where: str
    secretsmanager: Any
    ssm: Any


def open_store(settings: Settings, target: Target) -> Store:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=3, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"})
    if target is Target.local:
        endpoint = f"http://127.0.0.1:{settings.emulator_port}"
        session = boto3.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=settings.region
        )
        return Store(
            target,
            f"the local cloud at {endpoint}",
            session.client("secretsmanager", endpoint_url=endpoint, config=config),
            session.client("ssm", endpoint_url=endpoint, config=config),
        )
    session = boto3.Session()
    where = f"AWS ({session.region_name or 'no region'})"
    with _sdk_errors(target, where):  # a client needs a region
        return Store(
            target,
            where,
            session.client("secretsmanager", config=config),
            session.client("ssm", config=config),
        )


@contextmanager
def _sdk_errors(target: Target, where: str) -> Iterator[None]:
    """Unreachable targets, missing credentials and no region become clear errors."""
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError, NoRegionError

    try:
        yield
    except EndpointConnectionError:
        if target is Target.local:
            raise NotRunningError(
                f"{where} is not answering", "start it with `devenv up` (or set emulator_port)"
            ) from None
        raise DevenvError(f"cannot reach {where}", "check your network and AWS region") from None
    except NoCredentialsError:
        raise ConfigError(
            "no AWS credentials found", "configure them (AWS_PROFILE, `aws configure` or OIDC in CI)"
        ) from None
    except NoRegionError:
        raise ConfigError("no AWS region configured", "set AWS_REGION or a region in your profile") from None


def _call(store: Store, action: Callable[[], Any]) -> Any:
    """Run one SDK call, its failures as clear errors."""
    with _sdk_errors(store.target, store.where):
        return action()


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _read(store: Store, what: str, action: Callable[[], Any], not_found: str, hint: str) -> Any:
    """One SDK read of `what` (e.g. "secret llm-proxy/x"); the `not_found` error code says it does not
    exist, with `hint`."""
    from botocore.exceptions import ClientError

    try:
        return _call(store, action)
    except ClientError as exc:
        if _error_code(exc) == not_found:
            raise DevenvError(f"{what} does not exist on {store.where}", hint) from None
        raise DevenvError(f"cannot read {what} on {store.where}: {exc}") from None


def secret_name(name: str) -> str:
    """Full secret name from a short one (`management-token`) or the full one."""
    if name in SECRETS:
        return SECRETS[name]
    if name in SECRETS.values():
        return name
    raise UsageError(f"unknown secret {name!r}", f"known secrets: {', '.join(SECRETS)}")


def parameter_name(name: str) -> tuple[str, str]:
    """(short, full) parameter name from either form."""
    for short, full in PARAMETERS.items():
        if name in (short, full):
            return short, full
    raise UsageError(f"unknown config name {name!r}", f"known names: {', '.join(PARAMETERS)}")


def put_secret(store: Store, name: str, value: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    full = secret_name(name)
    if not value:
        raise UsageError(f"empty value for secret {full}", "pass a non-empty value")
    try:
        response = _call(
            store, lambda: store.secretsmanager.put_secret_value(SecretId=full, SecretString=value)
        )
        created = False
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise DevenvError(f"cannot set secret {full} on {store.where}: {exc}") from None
        response = _call(store, lambda: store.secretsmanager.create_secret(Name=full, SecretString=value))
        created = True
    return {"name": full, "arn": response["ARN"], "version": response.get("VersionId"), "created": created}


def get_secret(store: Store, name: str) -> dict[str, Any]:
    full = secret_name(name)
    response = _read(
        store,
        f"secret {full}",
        lambda: store.secretsmanager.get_secret_value(SecretId=full),
        "ResourceNotFoundException",
        f"deploy the stack there, or create it with `devenv secret set {name} --target {store.target.value}`",
    )
    return {"name": full, "arn": response["ARN"], "value": response.get("SecretString", "")}


def list_secrets(store: Store) -> list[dict[str, Any]]:
    """Every known secret and its ARN on the target (None when absent); never their values."""
    listed = _call(store, lambda: store.secretsmanager.list_secrets(MaxResults=100))
    present = {item["Name"]: item["ARN"] for item in listed.get("SecretList", [])}
    return [{"key": short, "name": full, "arn": present.get(full)} for short, full in SECRETS.items()]


def put_parameter(store: Store, name: str, value: str) -> dict[str, Any]:
    short, full = parameter_name(name)
    problem = PARAMETER_CHECKS[short](value)
    if problem:
        raise UsageError(f"bad value {value!r} for {short}: {problem}", f"e.g. devenv config set {short} ...")
    response = _call(
        store,
        lambda: store.ssm.put_parameter(Name=full, Value=value, Type="String", Overwrite=True),
    )
    return {"name": full, "value": value, "version": response.get("Version")}


def get_parameter(store: Store, name: str) -> dict[str, Any]:
    short, full = parameter_name(name)
    response = _read(
        store,
        f"config {full}",
        lambda: store.ssm.get_parameter(Name=full),
        "ParameterNotFound",
        f"deploy the stack there, or set it with `devenv config set {short} VALUE`",
    )
    return {
        "name": full,
        "value": response["Parameter"]["Value"],
        "version": response["Parameter"].get("Version"),
    }


def list_parameters(store: Store) -> list[dict[str, Any]]:
    """Every known parameter with its value on the target (None when absent)."""
    found = _call(store, lambda: store.ssm.get_parameters(Names=list(PARAMETERS.values())))
    values = {item["Name"]: item["Value"] for item in found.get("Parameters", [])}
    return [{"key": short, "name": full, "value": values.get(full)} for short, full in PARAMETERS.items()]
