"""Options shared by several commands, each defined once with its environment variable."""

from __future__ import annotations

import typer

from devenv.cli.application import OutputFormat
from devenv.errors import UsageError
from devenv.targets.endpoints import Target

OutputOption = typer.Option(
    OutputFormat.text,
    "--output",
    "-o",
    envvar="DEVENV_OUTPUT",
    help="text for people, json for machines (stdout holds only the JSON)",
)
QuietOption = typer.Option(
    False, "--quiet", "-q", envvar="DEVENV_QUIET", help="print only errors and the result"
)
VerboseOption = typer.Option(
    False, "--verbose", help="also print the CDK CLI's output (it is always in <state dir>/logs/cdk.log)"
)
TargetOption = typer.Option(
    Target.local,
    "--target",
    "-t",
    envvar="DEVENV_TARGET",
    help="local (the local cloud of `devenv up`) or aws (your AWS credentials, profile and region)",
)
UrlOption = typer.Option(
    None, "--url", envvar="DEVENV_TARGET_URL", help="the proxy's base URL [from the target]"
)
ManagementTokenOption = typer.Option(
    None, "--management-token", envvar="MANAGEMENT_TOKEN", help="management API token [from the target]"
)
WorkersOption = typer.Option(
    None,
    "--workers",
    min=0,
    envvar="DEVENV_LOADTEST_WORKERS",
    help="Locust worker processes on this machine under one Locust master; 0 runs a single Locust "
    "process [one per core]",
)
LOCAL_UPSTREAM_KEY = "sk-devenv-mock-upstream"  # what the local mock upstream accepts
ProjectApiKeyOption = typer.Option(
    LOCAL_UPSTREAM_KEY,
    "--api-key",
    envvar="DEVENV_PROJECT_API_KEY",
    help="the upstream key of a project created on first use",
)
PropsOption = typer.Option(
    None, "--props", help="the stack's props JSON [default: props/<target>.json in the CDK app]"
)
ContextOption = typer.Option(
    [], "--context", "-c", metavar="KEY=VALUE", help="override a prop or add CDK context (repeatable)"
)


def parse_context(pairs: list[str]) -> dict[str, str]:
    """`--context KEY=VALUE` pairs as a mapping; a pair without `=` or a key is a usage error."""
    context = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(
                f"--context {pair!r} is not KEY=VALUE", "write it like --context imageTag=v1.2.3"
            )
        context[key] = value
    return context
