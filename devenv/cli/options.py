"""Options shared by several commands, each defined once with its environment variable."""

from __future__ import annotations

import typer

from devenv.cli.application import OutputFormat

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
