"""The seed's config CLI: `devenv secret set|get|list`, `devenv config set|get|list`, `devenv setup`.

Secrets live in Secrets Manager, plain config in SSM Parameter Store, under the names the stack creates
(devenv/stack_names.py). `--target local` talks to the emulator (http://127.0.0.1:<emulator_port>, credentials
test/test, the settings' region); `--target aws` uses the default boto3 credential chain, profile and
region. Secret values are never printed unless `--reveal` is given.
"""

from __future__ import annotations

import re
import secrets as token_source
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer

from devenv.cli.application import Application, OutputFormat
from devenv.cli.options import OutputOption, QuietOption, TargetOption
from devenv.config import Settings
from devenv.errors import ConfigError, DevenvError, NotRunningError, UsageError
from devenv.stack_names import PARAMETERS, SECRETS
from devenv.targets.endpoints import Target

HIDDEN = "********"


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
    return Store(
        target,
        f"AWS ({session.region_name or 'no region'})",
        session.client("secretsmanager", config=config),
        session.client("ssm", config=config),
    )


def _call(store: Store, action: Callable[[], Any]) -> Any:
    """Run one SDK call; unreachable targets and missing credentials become clear errors."""
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError, NoRegionError

    try:
        return action()
    except EndpointConnectionError:
        if store.target is Target.local:
            raise NotRunningError(
                f"{store.where} is not answering", "start it with `devenv up` (or set emulator_port)"
            ) from None
        raise DevenvError(f"cannot reach {store.where}", "check your network and AWS region") from None
    except NoCredentialsError:
        raise ConfigError(
            "no AWS credentials found", "configure them (AWS_PROFILE, `aws configure` or OIDC in CI)"
        ) from None
    except NoRegionError:
        raise ConfigError("no AWS region configured", "set AWS_REGION or a region in your profile") from None


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


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
    from botocore.exceptions import ClientError

    full = secret_name(name)
    try:
        response = _call(store, lambda: store.secretsmanager.get_secret_value(SecretId=full))
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            raise DevenvError(
                f"secret {full} does not exist on {store.where}",
                f"deploy the stack there, or create it with `devenv secret set {name} --target {store.target.value}`",
            ) from None
        raise DevenvError(f"cannot read secret {full} on {store.where}: {exc}") from None
    return {"name": full, "arn": response["ARN"], "value": response.get("SecretString", "")}


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
    from botocore.exceptions import ClientError

    short, full = parameter_name(name)
    try:
        response = _call(store, lambda: store.ssm.get_parameter(Name=full))
    except ClientError as exc:
        if _error_code(exc) == "ParameterNotFound":
            raise DevenvError(
                f"config {full} does not exist on {store.where}",
                f"deploy the stack there, or set it with `devenv config set {short} VALUE`",
            ) from None
        raise DevenvError(f"cannot read config {full} on {store.where}: {exc}") from None
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


def _app(ctx: typer.Context, output: OutputFormat, quiet: bool) -> Application:
    from devenv.cli.application import application

    return application(ctx, output, quiet)


def register(app: typer.Typer) -> None:
    secret_app = typer.Typer(
        help="Secrets in Secrets Manager (values hidden unless --reveal).", no_args_is_help=True
    )
    config_app = typer.Typer(help="Plain config in SSM Parameter Store.", no_args_is_help=True)
    app.add_typer(secret_app, name="secret")
    app.add_typer(config_app, name="config")

    @secret_app.command("set")
    def secret_set(
        ctx: typer.Context,
        name: str = typer.Argument(..., help=f"one of: {', '.join(SECRETS)}"),
        value: str | None = typer.Argument(
            None, help="the value; omit it to be prompted (keeps it out of history)"
        ),
        target: Target = TargetOption,
        output: OutputFormat = OutputOption,
        quiet: bool = QuietOption,
    ) -> None:
        """Set a secret's value (creating the secret if the stack has not)."""
        application_ = _app(ctx, output, quiet)
        secret_name(name)
        if value is None:
            value = typer.prompt(f"value for {name}", hide_input=True, confirmation_prompt=True, err=True)
        store = open_store(application_.settings, target)
        result = put_secret(store, name, value)
        if application_.json_output:
            application_.emit_json({**result, "target": target.value})
            return
        verb = "created" if result["created"] else "updated"
        application_.info(f"{verb} secret {result['name']} on {store.where} (value not shown)")

    @secret_app.command("get")
    def secret_get(
        ctx: typer.Context,
        name: str = typer.Argument(..., help=f"one of: {', '.join(SECRETS)}"),
        reveal: bool = typer.Option(False, "--reveal", help="print the value itself"),
        target: Target = TargetOption,
        output: OutputFormat = OutputOption,
        quiet: bool = QuietOption,
    ) -> None:
        """Show a secret (its value only with --reveal)."""
        application_ = _app(ctx, output, quiet)
        result = get_secret(open_store(application_.settings, target), name)
        shown = result["value"] if reveal else HIDDEN
        if application_.json_output:
            application_.emit_json(
                {
                    "name": result["name"],
                    "arn": result["arn"],
                    "value": shown,
                    "revealed": reveal,
                    "target": target.value,
                }
            )
            return
        if reveal:
            application_.out.print(shown, highlight=False, markup=False)
        else:
            application_.out.print(
                f"{result['name']}: {HIDDEN} ({len(result['value'])} characters; --reveal shows it)"
            )

    @secret_app.command("list")
    def secret_list(
        ctx: typer.Context,
        target: Target = TargetOption,
        output: OutputFormat = OutputOption,
        quiet: bool = QuietOption,
    ) -> None:
        """The stack's secrets and whether each exists on the target (never their values)."""
        application_ = _app(ctx, output, quiet)
        store = open_store(application_.settings, target)
        listed = _call(store, lambda: store.secretsmanager.list_secrets(MaxResults=100))
        present = {item["Name"]: item["ARN"] for item in listed.get("SecretList", [])}
        rows = [{"key": short, "name": full, "arn": present.get(full)} for short, full in SECRETS.items()]
        if application_.json_output:
            application_.emit_json(rows)
            return
        for row in rows:
            application_.out.print(f"{row['key']:22} {row['name']:34} {'set' if row['arn'] else '-'}")

    @config_app.command("set")
    def config_set(
        ctx: typer.Context,
        name: str = typer.Argument(..., help=f"one of: {', '.join(PARAMETERS)}"),
        value: str = typer.Argument(...),
        target: Target = TargetOption,
        output: OutputFormat = OutputOption,
        quiet: bool = QuietOption,
    ) -> None:
        """Set a config value (tasks read it at start: redeploy or restart tasks to apply)."""
        application_ = _app(ctx, output, quiet)
        parameter_name(name)
        store = open_store(application_.settings, target)
        result = put_parameter(store, name, value)
        if application_.json_output:
            application_.emit_json({**result, "target": target.value})
            return
        application_.info(f"set {result['name']} = {value} on {store.where}")

    @config_app.command("get")
    def config_get(
        ctx: typer.Context,
        name: str = typer.Argument(..., help=f"one of: {', '.join(PARAMETERS)}"),
        target: Target = TargetOption,
        output: OutputFormat = OutputOption,
        quiet: bool = QuietOption,
    ) -> None:
        """Print a config value."""
        application_ = _app(ctx, output, quiet)
        result = get_parameter(open_store(application_.settings, target), name)
        if application_.json_output:
            application_.emit_json({**result, "target": target.value})
            return
        application_.out.print(result["value"], highlight=False, markup=False)

    @config_app.command("list")
    def config_list(
        ctx: typer.Context,
        target: Target = TargetOption,
        output: OutputFormat = OutputOption,
        quiet: bool = QuietOption,
    ) -> None:
        """Every config value of the stack on the target."""
        application_ = _app(ctx, output, quiet)
        rows = list_parameters(open_store(application_.settings, target))
        if application_.json_output:
            application_.emit_json(rows)
            return
        for row in rows:
            value = row["value"] if row["value"] is not None else "(not set)"
            application_.out.print(f"{row['key']:16} {row['name']:28} {value}", highlight=False, markup=False)

    @app.command("setup")
    def setup(
        ctx: typer.Context,
        target: Target = TargetOption,
        output: OutputFormat = OutputOption,
        quiet: bool = QuietOption,
    ) -> None:
        """Interactive wizard: the config values and secrets the stack needs, current values as defaults."""
        application_ = _app(ctx, output, quiet)
        store = open_store(application_.settings, target)
        current = {row["key"]: row["value"] for row in list_parameters(store)}
        defaults = {
            "log-level": "info",
            "cache-enabled": "true",
            "rate-limit-rpm": "0",
            "upstream-url": "https://api.openai.com",
        }
        changed: list[str] = []
        for key in ("upstream-url", "log-level", "cache-enabled", "rate-limit-rpm"):
            before = current.get(key)
            while True:
                answer = typer.prompt(key, default=before or defaults[key], err=True).strip()
                problem = PARAMETER_CHECKS[key](answer)
                if problem is None:
                    break
                application_.err.print(f"[red]{key} {problem}[/]")
            if answer != before:
                put_parameter(store, key, answer)
                changed.append(PARAMETERS[key])
        token_prompt = "management-token (blank keeps the current one, 'generate' makes a new one)"
        answer = typer.prompt(token_prompt, default="", show_default=False, hide_input=True, err=True).strip()
        if answer:
            value = token_source.token_urlsafe(36) if answer == "generate" else answer
            put_secret(store, "management-token", value)
            changed.append(SECRETS["management-token"])
        key_prompt = "openai-api-key (blank skips)"
        answer = typer.prompt(key_prompt, default="", show_default=False, hide_input=True, err=True).strip()
        if answer:
            put_secret(store, "openai-api-key", answer)
            changed.append(SECRETS["openai-api-key"])
        if application_.json_output:
            application_.emit_json({"target": target.value, "changed": changed})
            return
        summary = ", ".join(changed) if changed else "nothing"
        application_.info(f"setup on {store.where}: changed {summary}; restart tasks to apply")
