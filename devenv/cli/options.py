"""Options shared by several commands, each defined once with its environment variable."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import typer

from devenv import stack_names
from devenv.cli.application import OutputFormat, application
from devenv.errors import UsageError
from devenv.targets.endpoints import Target
from devenv.targets.stack_settings import open_store

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
    False,
    "--verbose",
    help="also print the CDK CLI's output (it is always in <state dir>/logs/cdk.log); `up`: and its full"
    " report (ports, stack outputs) on a terminal",
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


class StackChoice(StrEnum):
    """The stacks of the CDK app a command can act on."""

    proxy = "proxy"
    loadgen = "loadgen"

    @property
    def stack_name(self) -> str:
        return stack_names.LOADGEN_STACK_NAME if self is StackChoice.loadgen else stack_names.STACK_NAME


StackOption = typer.Option(
    StackChoice.proxy,
    "--stack",
    help="proxy (LlmProxyStack) or loadgen (LlmProxyLoadGenStack: Locust in the proxy's VPC, deployed "
    "only when asked; needs the proxy stack)",
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


def with_options(
    prepare: Callable[..., dict[str, Any]],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Declare a block of options once for every command of a group.

    `prepare`'s parameters (the context and options with their typer defaults) join the decorated command's
    own in the signature Typer reads; at run time `prepare` gets them and returns what the command needs
    instead (its parameters without a default, by name), e.g. the Application and a client of the target.
    """
    prepared = inspect.signature(prepare, eval_str=True).parameters

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = inspect.signature(command, eval_str=True).parameters.values()
        context, *shared = prepared.values()  # the context first, then the command's own, then the block
        options = [p for p in own if p.default is not inspect.Parameter.empty]
        signature = inspect.Signature(
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in (context, *options, *shared)]
        )

        @functools.wraps(command)
        def run(**given: Any) -> None:
            needs = prepare(**{name: given.pop(name) for name in prepared})
            command(**needs, **given)

        run.__signature__ = signature  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
        return run

    return decorate


def stack_settings(
    ctx: typer.Context,
    target: Target = TargetOption,
    output: OutputFormat = OutputOption,
    quiet: bool = QuietOption,
) -> dict[str, Any]:
    """The options of `secret`, `config` and `setup` (with `with_options`): the command gets `app` and
    `store`, the target's Secrets Manager and SSM."""
    app = application(ctx, output, quiet)
    return {"app": app, "store": open_store(app.settings, target)}
